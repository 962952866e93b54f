"""Top-10 cosine retrieval over 200K × 400-d vectors: numpy brute force vs faiss flat, HNSW, IVF.

Every contender searches the same 1000 queries in one batch, in the same process; a round times
each once, in turn, and the figures are medians over rounds. ms/query is the batch time over the
number of queries; the speed-up is numpy's ms/query over the contender's (same round, then the
median); recall@10 is the mean fraction of the exact top 10 (numpy's) that a contender returns.

Contenders: numpy, faiss ``IndexFlatIP`` (exact), ``IndexHNSWFlat`` (M, efSearch),
``PCA64,HNSW32,Refine(Flat)`` (HNSW over the top 64 principal components, its ``refine`` × 10
candidates re-ranked exactly in 400-d), ``IndexIVFFlat`` (nlist, nprobe).

Three data sets: ``clustered`` (points scattered around 1000 random unit centres, cosine ≈ 0.7
to their centre: embeddings of images of a few hundred kinds of thing), ``latent`` (a 32-d
Gaussian mapped into 400-d plus noise: a learned embedding's low intrinsic dimension, no
clusters) and ``random`` (i.i.d. Gaussian directions: no neighbour is much nearer than any
other, the worst case for approximate search, which no index wins on). Queries are drawn from
the same distribution as the points, none of them a point.

    python benchmarks/retrieval_speed.py                      # all three, the default sweep
    python benchmarks/retrieval_speed.py --data clustered --repeats 5
"""

import argparse
import statistics
import time
from collections.abc import Callable

import faiss
import numpy as np

K = 10
DATA = ["clustered", "latent", "random"]


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_data(kind: str, n: int, q: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, dim)`` items and ``(q, dim)`` queries, float32, L2-normalized."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        both = rng.standard_normal((n + q, dim), dtype=np.float32)
    elif kind == "latent":
        # A 32-d Gaussian seen through a random 400 × 32 map, plus isotropic noise of a third
        # of its norm: the low intrinsic dimension of a learned embedding, without clusters.
        mixing = rng.standard_normal((32, dim), dtype=np.float32) / np.sqrt(32)
        both = rng.standard_normal((n + q, 32), dtype=np.float32) @ mixing
        both += rng.standard_normal((n + q, dim), dtype=np.float32) / 3
    else:
        centres = unit_rows(rng.standard_normal((1000, dim), dtype=np.float32))
        # Noise of norm ≈ 1 around a unit centre: cosine ≈ 0.7 to it.
        both = centres[rng.integers(0, len(centres), n + q)]
        both += rng.standard_normal((n + q, dim), dtype=np.float32) / np.sqrt(dim)
    both = np.ascontiguousarray(unit_rows(both), dtype=np.float32)
    return both[:n], both[n:]


def numpy_top_k(items: np.ndarray, queries: np.ndarray, k: int = K, chunk: int = 100):
    """Exact top ``k`` by inner product: a matrix product, argpartition, then a sort of the k."""
    result = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):  # 100 × 200K scores = 80 MB at a time
        scores = queries[start : start + chunk] @ items.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        result[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return result


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    hits = [len(set(f) & set(e)) / len(e) for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits))


def build_contenders(items: np.ndarray, args) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name → search function (queries → top-k ids); prints each index's build time."""
    dim = items.shape[1]
    contenders = {"numpy brute force": lambda queries: numpy_top_k(items, queries)}

    def timed_build(name: str, build: Callable[[], faiss.Index]) -> faiss.Index:
        started = time.perf_counter()
        index = build()
        print(f"  built {name} in {time.perf_counter() - started:.1f} s", flush=True)
        return index

    def search(index: faiss.Index, set_param: Callable[[], None] | None = None):
        def run(queries: np.ndarray) -> np.ndarray:
            if set_param is not None:
                set_param()
            return index.search(queries, K)[1]

        return run

    def flat() -> faiss.Index:
        index = faiss.IndexFlatIP(dim)
        index.add(items)
        return index

    contenders["faiss flat"] = search(timed_build("flat", flat))

    for m in args.hnsw_m:

        def hnsw(m=m) -> faiss.Index:
            index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = args.ef_construction
            index.add(items)
            return index

        index = timed_build(f"HNSW M={m} efConstruction={args.ef_construction}", hnsw)
        for ef in args.ef_search:

            def set_ef(index=index, ef=ef) -> None:
                index.hnsw.efSearch = ef

            contenders[f"faiss HNSW M={m} efSearch={ef}"] = search(index, set_ef)

    for pca in args.pca:
        m = args.hnsw_m[0]

        def reduced(pca=pca, m=m) -> faiss.Index:
            description = f"PCA{pca},HNSW{m},Refine(Flat)"
            index = faiss.index_factory(dim, description, faiss.METRIC_INNER_PRODUCT)
            index.train(items)
            index.add(items)
            return index

        index = timed_build(f"PCA{pca},HNSW{m},Refine(Flat)", reduced)
        for ef in args.ef_search:
            params = faiss.IndexRefineSearchParameters(
                k_factor=args.refine, base_index_params=faiss.SearchParametersHNSW(efSearch=ef)
            )

            def run(queries: np.ndarray, index=index, params=params) -> np.ndarray:
                return index.search(queries, K, params=params)[1]

            contenders[f"faiss PCA{pca} HNSW M={m} efSearch={ef} refine×{args.refine}"] = run

    for nlist in args.nlist:

        def ivf(nlist=nlist) -> faiss.Index:
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(1).choice(len(items), min(len(items), 64 * nlist))
            index.train(items[np.sort(sample)])
            index.add(items)
            return index

        index = timed_build(f"IVF nlist={nlist} (trained on {64 * nlist} points)", ivf)
        for nprobe in args.nprobe:

            def set_nprobe(index=index, nprobe=nprobe) -> None:
                index.nprobe = nprobe

            contenders[f"faiss IVF nlist={nlist} nprobe={nprobe}"] = search(index, set_nprobe)
    return contenders


def bench(kind: str, args) -> None:
    print(f"\n## {kind}: {args.items} × {args.dim}, {args.queries} queries", flush=True)
    items, queries = make_data(kind, args.items, args.queries, args.dim, args.seed)
    exact = numpy_top_k(items, queries)
    contenders = build_contenders(items, args)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    speedups: dict[str, list[float]] = {name: [] for name in contenders}
    recalls = {}
    for _ in range(args.repeats):
        round_times = {}
        for name, run in contenders.items():
            started = time.perf_counter()
            found = run(queries)
            round_times[name] = time.perf_counter() - started
            recalls[name] = recall_at_k(found, exact)
        for name, seconds in round_times.items():
            times[name].append(seconds)
            speedups[name].append(round_times["numpy brute force"] / seconds)
    print("| contender | ms/query | speed-up vs numpy | recall@10 |")
    print("|---|---|---|---|")
    for name in contenders:
        ms = 1000 * statistics.median(times[name]) / len(queries)
        speedup = statistics.median(speedups[name])
        meets = " ✓" if speedup >= 10 and recalls[name] >= 0.95 else ""
        print(f"| {name} | {ms:.3f} | {speedup:.1f}×{meets} | {recalls[name]:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="*", choices=DATA, default=DATA)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=400)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hnsw-m", type=int, nargs="*", default=[32])
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--ef-search", type=int, nargs="*", default=[32, 64, 128, 256])
    # Search the top principal components with HNSW, then re-rank refine × K candidates exactly.
    parser.add_argument("--pca", type=int, nargs="*", default=[64])
    parser.add_argument("--refine", type=int, default=4)
    # 894 = 2·√200K, what index.nlist=auto gives.
    parser.add_argument("--nlist", type=int, nargs="*", default=[894])
    parser.add_argument("--nprobe", type=int, nargs="*", default=[8, 16, 32, 64])
    args = parser.parse_args()
    threads = faiss.omp_get_max_threads()
    print(f"faiss {faiss.__version__}, numpy {np.__version__}, {threads} threads")
    for kind in args.data:
        bench(kind, args)


if __name__ == "__main__":
    main()
