"""faiss indexes of unit image vectors: searched in memory (``cosine_ranking``, as training
validates) or kept on disk with the posts of their rows and who made them.

An index folder holds three files::

    index.faiss     the faiss index; row i is post i of posts.parquet
    posts.parquet   id, split, caption, image (relative to the dataset dir), one row a post
    index.json      IndexMeta: the checkpoint and the SHA-256 of its encoder weights, the
                    dimension, dataset, split, image size, index settings, skipped images

Vectors are L2-normalized, so the inner-product indexes rank by cosine. ``flat`` is exact;
``hnsw`` (Malkov & Yashunin, 2018, a navigable small-world graph) and ``ivf`` (an inverted file
of k-means cells, Jégou et al., 2011) trade a little recall for speed on large sets. On 200K
clustered 400-d vectors the defaults here, HNSW M=32 efSearch=128 and IVF nlist=2√N nprobe=16,
search 18× faster than numpy brute force at recall@10 0.977 and 1.000; on vectors without
clusters IVF's recall collapses and HNSW needs efSearch=128 for 0.98 at 6× (``benchmarks/
retrieval.py``, ``benchmarks/RESULTS.md``). Near-duplicate vectors hurt HNSW's graph: a
barely trained encoder whose outputs saturated (390 of 487 images with a twin) lost the top 1 of 3
queries in 487 at efSearch=128.

Example::

    settings = IndexSettings(type="hnsw")
    index = settings.build(vectors)                  # (N, D) float32 unit rows
    write_index(directory, index, posts, meta)
    stored = read_index(directory)
    check_model(stored.meta, weights_hash(encoder), dim, ckpt, rebuild="python -m ...")
"""

import json
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from miro.retrieval.errors import IndexMismatchError, RetrievalError

INDEX_FILE = "index.faiss"
POSTS_FILE = "posts.parquet"
META_FILE = "index.json"
POST_COLUMNS = ("id", "split", "caption", "image")
FORMAT = 1
# faiss's k-means wants ≥ 39 training points a cell; fewer cells than that on a small set.
MIN_POINTS_PER_CELL = 39


@dataclass
class IndexSettings:
    """How to build a faiss inner-product index (``type``) and how hard to search it.

    Args:
        type: ``flat`` (exact), ``hnsw`` or ``ivf``.
        hnsw_m: HNSW graph links per node (build time and memory grow with it).
        ef_construction: HNSW candidates kept while linking a new node.
        ef_search: HNSW candidates kept while searching; more = better recall, slower.
        nlist: IVF cells; ``auto`` = 2·√N (at most N / 39).
        nprobe: IVF cells visited per search; more = better recall, slower.

    ``ef_search`` and ``nprobe`` are search-time settings: ``tune`` applies them to an index
    read from disk, whatever they were when it was built.
    """

    type: str = "flat"
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 128
    nlist: int | str = "auto"
    nprobe: int = 16

    def __post_init__(self) -> None:
        if self.type not in BUILDERS:
            raise RetrievalError(
                f"index.type={self.type!r} is not one of {', '.join(BUILDERS)} "
                "(flat: exact; hnsw, ivf: approximate, for large sets)"
            )
        if self.nlist != "auto" and (not isinstance(self.nlist, int) or self.nlist < 1):
            raise RetrievalError(f"index.nlist must be auto or at least 1, got {self.nlist!r}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe"):
            if getattr(self, name) < 1:
                raise RetrievalError(f"index.{name} must be at least 1, got {getattr(self, name)}")

    def cells(self, count: int) -> int:
        """The IVF cells for ``count`` vectors."""
        if self.nlist != "auto":
            return min(self.nlist, count)
        return max(1, min(round(2 * math.sqrt(count)), count // MIN_POINTS_PER_CELL))

    def build(self, vectors: np.ndarray) -> faiss.Index:
        """An index of ``vectors`` ``(N, D)`` float32 unit rows (N ≥ 1), row i = id i."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = BUILDERS[self.type](self, vectors)
        index.add(vectors)
        return self.tune(index)

    def tune(self, index: faiss.Index) -> faiss.Index:
        """Apply the search-time settings (``ef_search``, ``nprobe``) to ``index``."""
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = self.ef_search
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = min(self.nprobe, index.nlist)
        return index

    def built(self, index: faiss.Index) -> dict:
        """These settings as the index was built (``nlist`` resolved), for ``IndexMeta``."""
        settings = asdict(self)
        if isinstance(index, faiss.IndexIVF):
            settings["nlist"] = int(index.nlist)
        return settings


def _flat(settings: IndexSettings, vectors: np.ndarray) -> faiss.Index:
    return faiss.IndexFlatIP(vectors.shape[1])


def _hnsw(settings: IndexSettings, vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexHNSWFlat(vectors.shape[1], settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = settings.ef_construction
    return index


def _ivf(settings: IndexSettings, vectors: np.ndarray) -> faiss.Index:
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    index = faiss.IndexIVFFlat(
        quantizer, vectors.shape[1], settings.cells(len(vectors)), faiss.METRIC_INNER_PRODUCT
    )
    index.train(vectors)  # k-means; faiss samples 256 points a cell at most
    return index


BUILDERS = {"flat": _flat, "hnsw": _hnsw, "ivf": _ivf}


def cosine_ranking(items: np.ndarray, queries: np.ndarray, k: int | None = None) -> np.ndarray:
    """Indices ``(Q, k)`` int64 of the ``k`` items ``(N, D)`` most cosine-similar to each query
    ``(Q, D)``, best first (all ``N`` by default): an exact search of a flat index."""
    items, queries = unit_rows(items), unit_rows(queries)
    _, indices = IndexSettings(type="flat").build(items).search(queries, k or len(items))
    return indices


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as a new float32 array whose rows have unit length (zero rows stay zero)."""
    rows = np.array(vectors, dtype=np.float32, order="C")
    faiss.normalize_L2(rows)
    return rows


@dataclass
class IndexMeta:
    """Who made an index and from what; ``index.json``."""

    checkpoint: str  # absolute path of the encoder checkpoint
    model_hash: str  # SHA-256 of its encoder weights (``embed.weights_hash``)
    dim: int
    dataset_dir: str  # absolute; posts' image paths are relative to it
    split: str | None  # None: every post
    image_size: int
    index: dict  # IndexSettings as built
    count: int  # rows of the index
    skipped: dict[str, str] = field(default_factory=dict)  # image path → why unreadable
    format: int = FORMAT


@dataclass
class StoredIndex:
    """An index read from ``directory``: the faiss index, its posts (columns of
    ``POST_COLUMNS``, row i = index row i) and its metadata."""

    directory: Path
    index: faiss.Index
    posts: dict[str, list]
    meta: IndexMeta


def index_exists(directory: str | Path) -> bool:
    return all((Path(directory) / name).is_file() for name in (INDEX_FILE, POSTS_FILE, META_FILE))


def write_index(
    directory: str | Path, index: faiss.Index, posts: dict[str, list], meta: IndexMeta
) -> Path:
    """Write the three files into ``directory``, replacing what was there only once all are
    written (an interrupted build leaves the old index whole)."""
    directory = Path(directory)
    if index.ntotal != meta.count or any(len(posts[c]) != meta.count for c in POST_COLUMNS):
        raise ValueError(f"index rows {index.ntotal}, posts and meta.count {meta.count} differ")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    faiss.write_index(index, str(staging / INDEX_FILE))
    table = pa.table({column: pa.array(posts[column], pa.string()) for column in POST_COLUMNS})
    pq.write_table(table, staging / POSTS_FILE)
    (staging / META_FILE).write_text(json.dumps(asdict(meta), indent=2) + "\n")
    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)
    return directory


def read_index(directory: str | Path) -> StoredIndex:
    """The index in ``directory`` (see ``index_exists``); ``RetrievalError`` if unreadable."""
    directory = Path(directory)
    try:
        meta = IndexMeta(**json.loads((directory / META_FILE).read_text()))
        index = faiss.read_index(str(directory / INDEX_FILE))
        posts = pq.read_table(directory / POSTS_FILE, columns=list(POST_COLUMNS)).to_pydict()
    except (OSError, RuntimeError, TypeError, ValueError, pa.ArrowException) as err:
        raise RetrievalError(
            f"the index in {directory} is unreadable ({type(err).__name__}: {err}); rebuild it "
            "with `python -m miro.retrieve index ...`"
        ) from err
    if meta.format != FORMAT or index.ntotal != meta.count or len(posts["id"]) != meta.count:
        raise RetrievalError(
            f"the index in {directory} is inconsistent (format {meta.format}, {index.ntotal} "
            f"vectors, {len(posts['id'])} posts, {META_FILE} says {meta.count}); rebuild it"
        )
    return StoredIndex(directory, index, posts, meta)


def check_model(meta: IndexMeta, model_hash: str, dim: int, ckpt: str | Path, rebuild: str) -> None:
    """Refuse an index whose vectors another encoder made (other weights or dimension).

    ``rebuild`` is the command that rebuilds it with ``ckpt``; it ends the message.
    """
    if meta.model_hash == model_hash and meta.dim == dim:
        return
    raise IndexMismatchError(
        f"the index was built by another model: {meta.checkpoint} ({meta.dim}-d, encoder "
        f"weights {meta.model_hash[:12]}), but ckpt={ckpt} is {dim}-d with weights "
        f"{model_hash[:12]}. Rebuild the index with this checkpoint:\n  {rebuild}\n"
        "or pass the index_dir of this checkpoint's own index"
    )
