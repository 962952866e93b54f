"""Retrieval at 200K posts: faiss search vs numpy, caption tokenizing, fitting the text models.

Three sections, in one process, each skippable (``--skip-faiss``, ``--skip-tokenizer``,
``--skip-lda``, ``--skip-word2vec``); sizes are options, seeds fixed, figures are medians.

**Search.** Top-10 cosine retrieval over 200K × 400-d vectors: numpy brute force vs faiss flat,
HNSW, IVF. Every contender searches the same 1000 queries in one batch, in the same process; a
round times each once, in turn, and the figures are medians over rounds. ms/query is the batch
time over the number of queries; the speed-up is numpy's ms/query over the contender's (same
round, then the median); recall@10 is the mean fraction of the exact top 10 (numpy's) that a
contender returns.

Contenders: numpy, faiss ``IndexFlatIP`` (exact), ``IndexHNSWFlat`` (M, efSearch),
``PCA64,HNSW32,Refine(Flat)`` (HNSW over the top 64 principal components, its ``refine`` × 10
candidates re-ranked exactly in 400-d), ``IndexIVFFlat`` (nlist, nprobe).

Three data sets: ``clustered`` (points scattered around 1000 random unit centres, cosine ≈ 0.7
to their centre: embeddings of images of a few hundred kinds of thing), ``latent`` (a 32-d
Gaussian mapped into 400-d plus noise: a learned embedding's low intrinsic dimension, no
clusters) and ``random`` (i.i.d. Gaussian directions: no neighbour is much nearer than any
other, the worst case for approximate search, which no index wins on). Queries are drawn from
the same distribution as the points, none of them a point.

**Tokenizer.** Captions/s of ``miro.text.tokenize.CaptionTokenizer`` as
``conf/tokenizer/default.yaml`` builds it: fresh (no vocabulary, as ``data_pipeline.build``
uses it: a hashtag is one word) and after ``learn_vocabulary`` (as the text models use it:
compound hashtags split into known words; its split cache starts empty each round, as in a fit).

**Text models.** Wall and CPU seconds of ``fit`` on ``--captions`` captions for the LDA
(``conf/text/lda.yaml``: 40 topics, 10 passes, workers 1 = ``LdaModel`` and 2 =
``LdaMulticore``) and word2vec (``conf/text/word2vec.yaml``: 400-d, 25 epochs) embedders, as
``python -m miro.train`` composes them (fit teaches the tokenizer, tokenizes, builds the
vocabulary, trains); then captions/s of ``transform`` (captions → vectors) on
``--transform-captions`` of them. Target: the LDA fit ≤ 10 min at 200K
captions on 2 cores.

Captions come from the synthetic generator's own caption writer
(``data_pipeline.synthetic.captions.write_caption``) with ``GeneratorSettings``' defaults (four
languages, 20% unrelated to their picture, owners with Zipf weights), about what their pictures
show — compositions drawn from ``motifs.compose``'s distributions without painting the picture,
which no caption reads and which costs ten times the caption (0.65 ms vs 55 µs).

    python benchmarks/retrieval.py                            # everything, the default sweep
    python benchmarks/retrieval.py --skip-faiss --captions 20000 --lda-workers 1
    python benchmarks/retrieval.py --skip-tokenizer --skip-lda --skip-word2vec --data clustered
"""

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from timing import header

from data_pipeline.synthetic import GeneratorSettings
from data_pipeline.synthetic.captions import write_caption
from data_pipeline.synthetic.motifs import (
    _REPEATABLE,
    BACKGROUNDS,
    MOTIFS,
    PALETTE,
    Composition,
    DrawnMotif,
)
from data_pipeline.synthetic.posts import make_owners, zipf_weights

CONF = Path(__file__).resolve().parents[1] / "conf"
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


def synthetic_composition(rng: np.random.Generator, settings: GeneratorSettings) -> Composition:
    """What ``motifs.compose`` would paint, drawn from its distributions, without the picture.

    A caption reads the motifs' names, colours and counts and the first (largest) motif's
    colour, never the radii or the background; ``compose`` gives the largest radius to the first
    of its randomly ordered names, so that motif is a uniform pick, as here.
    """
    count = int(rng.integers(settings.min_motifs, settings.max_motifs + 1))
    names = [str(name) for name in rng.choice(MOTIFS, size=count, replace=False)]
    motifs = []
    for name in names:
        colour = str(rng.choice(list(PALETTE)))
        repeats = 2 if name in _REPEATABLE and rng.random() < 0.25 else 1  # as compose
        motifs.append(DrawnMotif(name, colour, repeats, radius=float("nan")))
    return Composition(str(rng.choice(BACKGROUNDS)), tuple(motifs))


def synthetic_captions(n: int, seed: int) -> list[str]:
    """``n`` caption texts written as ``generate_posts`` writes them, with its default settings."""
    settings = GeneratorSettings()
    rng = np.random.default_rng(seed)
    users = [owner.username for owner in make_owners(rng, settings.num_owners)]
    owner_weights = zipf_weights(settings.num_owners, settings.owner_zipf_exponent)
    owners = rng.choice(settings.num_owners, size=n, p=owner_weights)
    weights = np.array(list(settings.languages.values()), dtype=float)
    languages = rng.choice(list(settings.languages), size=n, p=weights / weights.sum())
    unrelated = set(rng.choice(n, size=round(settings.unrelated_fraction * n), replace=False))
    return [
        write_caption(
            rng,
            str(languages[i]),
            synthetic_composition(rng, settings),
            mention_image=i not in unrelated,
            owner=users[owners[i]],
            other_users=users,
            scene_rate=settings.scene_rate,
            small_talk_rate=settings.small_talk_rate,
            misspelling_rate=settings.misspelling_rate,
            colour_rate=settings.colour_rate,
        ).text
        for i in range(n)
    ]


def text_config(*overrides: str):
    """The ``text`` node of ``python -m miro.train`` with these overrides (``seed`` resolved)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides)).text


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_tokenizer(captions: list[str], args) -> None:
    print(f"\n## tokenizer: {len(captions)} captions, medians of {args.repeats}", flush=True)
    fresh = instantiate(text_config("text=lda").tokenizer)
    learned = instantiate(text_config("text=lda").tokenizer)
    started, cpu = time.perf_counter(), cpu_seconds()
    learned.learn_vocabulary(captions)
    learn = (time.perf_counter() - started, cpu_seconds() - cpu)
    vocabulary = learned.vocabulary
    contenders = {
        "no vocabulary (data_pipeline.build)": fresh,
        "learned vocabulary, hashtags split (text models)": learned,
    }
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, tokenize in contenders.items():
            learned.set_vocabulary(vocabulary)  # an empty hashtag-split cache, as in a fit
            started, cpu = time.perf_counter(), cpu_seconds()
            for caption in captions:
                tokenize(caption)
            walls[name].append(time.perf_counter() - started)
            cpus[name].append(cpu_seconds() - cpu)
    baseline = statistics.median(walls[next(iter(contenders))])
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| tokenizer | captions/s | µs/caption | CPU µs/caption | time vs no vocabulary |")
    print("|---|---|---|---|---|")
    rows = [(name, statistics.median(walls[name]), statistics.median(cpus[name])) for name in walls]
    for name, wall, cpu in [*rows, ("learn_vocabulary (once)", *learn)]:
        per_s, us, cpu_us = (
            len(captions) / wall,
            1e6 * wall / len(captions),
            1e6 * cpu / len(captions),
        )
        ratio = f"{wall / baseline:.2f}×" if name in walls else ""
        print(f"| {name} | {per_s:,.0f} | {us:.1f} | {cpu_us:.1f} | {ratio} |")
    print(f"vocabulary: {len(vocabulary):,} words seen outside hashtags", flush=True)


def bench_text_models(captions: list[str], args) -> None:
    contenders = [(f"LDA workers={w}", ["text=lda", f"text.workers={w}"]) for w in args.lda_workers]
    contenders += [
        (f"word2vec workers={w}", ["text=word2vec", f"text.workers={w}"])
        for w in args.word2vec_workers
    ]
    sample = captions[: args.transform_captions]
    print(
        f"\n## text models: fit on {len(captions)} captions (medians of {args.fit_repeats}), "
        f"transform {len(sample)} of them",
        flush=True,
    )
    rows = []
    for name, overrides in contenders:
        walls, cpus = [], []
        for _ in range(args.fit_repeats):
            embedder = instantiate(text_config(*overrides))
            started, cpu = time.perf_counter(), cpu_seconds()
            embedder.fit(captions)
            walls.append(time.perf_counter() - started)
            cpus.append(cpu_seconds() - cpu)
            print(f"  {name}: fitted in {walls[-1]:.1f} s ({cpus[-1]:.1f} s CPU)", flush=True)
        started, cpu = time.perf_counter(), cpu_seconds()
        vectors = embedder.transform(sample)
        per_s = len(sample) / (time.perf_counter() - started)
        per_cpu_s = len(sample) / (cpu_seconds() - cpu)
        words = len(embedder.dictionary if "LDA" in name else embedder.vectors)
        empty = float((~vectors.any(axis=1)).mean())
        rows.append((name, walls, cpus, per_s, per_cpu_s, embedder.dim, words, empty))
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores")
    print(
        "| model | fit wall | fit CPU | wall vs 10 min | transform captions/s (per CPU s) "
        "| dim | vocabulary | zero rows |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, walls, cpus, per_s, per_cpu_s, dim, words, empty in rows:
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        # The 10-minute target is the LDA fit's; word2vec has none.
        target = f"{wall / 600:.2f}× {'✓' if wall <= 600 else '✗'}" if "LDA" in name else "—"
        transform = f"{per_s:,.0f} ({per_cpu_s:,.0f})"
        print(
            f"| {name} | {wall:.1f} s | {cpu:.1f} s | {target} | {transform} | {dim} | {words:,} "
            f"| {empty:.1%} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-faiss", action="store_true")
    parser.add_argument("--skip-tokenizer", action="store_true")
    parser.add_argument("--skip-lda", action="store_true")
    parser.add_argument("--skip-word2vec", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of search and tokenizing")
    # search
    parser.add_argument("--data", nargs="*", choices=DATA, default=DATA)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=400)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--hnsw-m", type=int, nargs="*", default=[32])
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--ef-search", type=int, nargs="*", default=[32, 64, 128, 256])
    # Search the top principal components with HNSW, then re-rank refine × K candidates exactly.
    parser.add_argument("--pca", type=int, nargs="*", default=[64])
    parser.add_argument("--refine", type=int, default=4)
    # 894 = 2·√200K, what index.nlist=auto gives.
    parser.add_argument("--nlist", type=int, nargs="*", default=[894])
    parser.add_argument("--nprobe", type=int, nargs="*", default=[8, 16, 32, 64])
    # captions and text models
    parser.add_argument("--captions", type=int, default=200_000)
    parser.add_argument("--lda-workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--word2vec-workers", type=int, nargs="*", default=[1])
    parser.add_argument("--fit-repeats", type=int, default=1)
    parser.add_argument("--transform-captions", type=int, default=20_000)
    args = parser.parse_args()
    print(header("Retrieval: faiss vs numpy, caption tokenizing, text-model fits"))
    if args.skip_lda:
        args.lda_workers = []
    if args.skip_word2vec:
        args.word2vec_workers = []
    threads = faiss.omp_get_max_threads()
    print(f"faiss {faiss.__version__}, numpy {np.__version__}, {threads} threads")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    if not args.skip_faiss:
        for kind in args.data:
            bench(kind, args)
    if args.skip_tokenizer and not args.lda_workers + args.word2vec_workers:
        return
    started = time.perf_counter()
    captions = synthetic_captions(args.captions, args.seed)
    seconds = time.perf_counter() - started
    print(f"\nwrote {len(captions)} synthetic captions in {seconds:.1f} s", flush=True)
    if not args.skip_tokenizer:
        bench_tokenizer(captions, args)
    if args.lda_workers + args.word2vec_workers:
        bench_text_models(captions, args)


if __name__ == "__main__":
    main()
