"""Exact and near-duplicate images, decided in arrival order: the first copy stays.

An exact duplicate has the same cached bytes as a kept post (the same pixels after orientation
and resizing). A near duplicate (a re-encoded, resized or re-compressed copy) has a perceptual
hash within ``max_distance`` bits of a kept post's *and* a 16×16 colour thumbnail within
``max_rms`` of it: pHash alone confuses flat graphics that share a background (measured on the
synthetic worlds: distinct images at distance 0), the thumbnail check does not (distinct pairs
≥ 6.9 RMS, copies ≤ 3.3).

Candidates come from a faiss binary index (``IndexBinaryFlat``): an exact range search by
Hamming radius over the kept hashes. Measured on one core, a post at a time (search, then add)
over 100,000 random 64-bit hashes: 4-6 s in all; faiss' multi-index hashing
(``IndexBinaryMultiHash``, 4 blocks of 16 bits) took 16 s, the Python one it replaces 71 s.

Example::

    duplicates = DuplicateFilter(max_distance=8, max_rms=5.0, thumbnail=load_thumbnail)
    duplicates.check("post-a", content_hash, phash)  # None: kept, and now indexed
    duplicates.check("post-b", content_hash, phash)  # 'exact_duplicate'
"""

from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager

import faiss
import imagehash
import numpy as np
from PIL import Image

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
HASH_BITS = 64
# Bump when the perceptual hash or the thumbnail changes: the stored hashes of cached images and
# the duplicate decisions are then redone (it is part of ResizeSpec.outcome_key).
# 2: imagehash's pHash (1 was our own, with an orthonormal DCT: a few bits apart).
SIGNATURE_VERSION = 2
_THUMBNAIL_SIDE = 16


def perceptual_hash(image: Image.Image) -> int:
    """``imagehash.phash`` as a 64-bit int, first bit highest.

    Grey 32×32 (Lanczos), 2-D DCT, the 8×8 lowest frequencies compared with their median.
    """
    return int(str(imagehash.phash(image)), 16)


def thumbnail(image: Image.Image) -> np.ndarray:
    """A 16×16 RGB thumbnail (box filter) as float32 ``(16, 16, 3)`` in [0, 255]."""
    small = image.convert("RGB").resize((_THUMBNAIL_SIDE,) * 2, Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32)


def thumbnail_rms(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square difference of two thumbnails, in 0-255 units."""
    return float(np.sqrt(np.mean((a - b) ** 2)))


class HammingIndex:
    """64-bit codes searchable by Hamming radius, in a faiss ``IndexBinaryFlat``.

    Args:
        radius: the largest distance ``near`` finds.
    """

    def __init__(self, radius: int) -> None:
        if not 0 <= radius < HASH_BITS:
            raise ValueError(f"near_duplicate_distance must be in [0, {HASH_BITS}), got {radius}")
        self.radius = radius
        self._index = faiss.IndexBinaryFlat(HASH_BITS)
        self._keys: list[Hashable] = []  # by faiss id: the insertion rank

    def add(self, keys: Sequence[Hashable], codes: Sequence[int]) -> None:
        """Index each code under its key (a key is added once)."""
        self._index.add(_as_bytes(codes))
        self._keys.extend(keys)

    def near(self, code: int) -> list[tuple[Hashable, int]]:
        """``(key, distance)`` of every indexed code within ``radius``, in insertion order."""
        with _one_thread():  # faiss finds the distances below its radius: radius + 1
            _, distances, ids = self._index.range_search(_as_bytes([code]), self.radius + 1)
        order = np.argsort(ids, kind="stable")
        return [(self._keys[ids[at]], int(distances[at])) for at in order]


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run faiss on this thread alone: an OpenMP team for a one-code search costs more than the
    search (measured on 2 busy cores, 30,000 posts: 37 s with a team, 1 s without)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _as_bytes(codes: Sequence[int]) -> np.ndarray:
    """64-bit codes as faiss' binary vectors: a row of 8 bytes each."""
    data = b"".join(code.to_bytes(HASH_BITS // 8, "big") for code in codes)
    return np.frombuffer(data, dtype=np.uint8).reshape(len(codes), HASH_BITS // 8)


class DuplicateFilter:
    """First-copy-wins duplicate decisions over posts fed in arrival order.

    Args:
        exact: drop posts whose cached image bytes equal a kept post's.
        max_distance: pHash bits a near duplicate may differ by; None turns near duplicates off.
        max_rms: thumbnail RMS a near duplicate may differ by; None trusts pHash alone.
        thumbnail: key → ``thumbnail(...)`` of that post's cached image (read on demand, only
            for pHash candidates).
    """

    def __init__(
        self,
        *,
        exact: bool = True,
        max_distance: int | None = 8,
        max_rms: float | None = 5.0,
        thumbnail: Callable[[Hashable], np.ndarray] | None = None,
    ) -> None:
        if max_rms is not None and max_distance is not None and thumbnail is None:
            raise ValueError("max_rms needs a thumbnail function")
        self.exact = exact
        self.max_rms = max_rms
        self._thumbnail = thumbnail
        self._by_content: dict[str, Hashable] = {}
        self._index = HammingIndex(max_distance) if max_distance is not None else None
        self._pending: list[tuple[Hashable, int]] = []
        self.copy_of: dict[Hashable, Hashable] = {}

    def keep(self, key: Hashable, content_hash: str, phash: int) -> None:
        """Record a post kept earlier (a reused decision) without checking it."""
        self._by_content.setdefault(content_hash, key)
        if self._index is not None:
            self._pending.append((key, phash))

    def check(self, key: Hashable, content_hash: str, phash: int) -> str | None:
        """The drop reason of the next post in arrival order, or None (then it is kept)."""
        if self.exact and content_hash in self._by_content:
            self.copy_of[key] = self._by_content[content_hash]
            return EXACT_DUPLICATE
        if self._index is not None:
            if self._pending:
                self._index.add(*zip(*self._pending, strict=True))
                self._pending.clear()
            for earlier, _ in self._index.near(phash):
                if self.max_rms is None or self._similar(key, earlier):
                    self.copy_of[key] = earlier
                    return NEAR_DUPLICATE
        self.keep(key, content_hash, phash)
        return None

    def _similar(self, key: Hashable, earlier: Hashable) -> bool:
        assert self._thumbnail is not None and self.max_rms is not None
        return thumbnail_rms(self._thumbnail(key), self._thumbnail(earlier)) <= self.max_rms
