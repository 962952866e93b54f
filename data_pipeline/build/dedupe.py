"""Exact and near-duplicate images, decided in arrival order: the first copy stays.

An exact duplicate has the same cached bytes as a kept post (the same pixels after orientation
and resizing). A near duplicate (a re-encoded, resized or re-compressed copy) has a perceptual
hash within ``max_distance`` bits of a kept post's *and* a 16×16 colour thumbnail within
``max_rms`` of it: pHash alone confuses flat graphics that share a background (measured on the
synthetic worlds: distinct images at distance 0), the thumbnail check does not (distinct pairs
≥ 6.9 RMS, copies ≤ 3.3).

Candidates come from multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming
Space with Multi-Index Hashing", CVPR 2012): the 64 bits are cut into 4 blocks of 16; two hashes
within ``r`` bits agree within ``r // 4`` bits on some block, so a query probes only those
neighbours of each block in a dict — no pass over all pairs.

Example::

    duplicates = DuplicateFilter(max_distance=8, max_rms=5.0, thumbnail=load_thumbnail)
    duplicates.check("post-a", content_hash, phash)  # None: kept, and now indexed
    duplicates.check("post-b", content_hash, phash)  # 'exact_duplicate'
"""

from collections.abc import Callable, Hashable, Iterator
from itertools import combinations

import numpy as np
from PIL import Image

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
HASH_BITS = 64
# Bump when the perceptual hash or the thumbnail changes, so stored decisions are redone.
SIGNATURE_VERSION = 1
_HASH_SIDE = 32
_LOW_FREQUENCIES = 8
_THUMBNAIL_SIDE = 16


def _dct_matrix(size: int) -> np.ndarray:
    """The orthonormal DCT-II as a matrix: ``D @ x`` transforms the columns of ``x``."""
    k = np.arange(size)
    matrix = np.sqrt(2 / size) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * size))
    matrix[0] /= np.sqrt(2)
    return matrix


_DCT = _dct_matrix(_HASH_SIDE)


def perceptual_hash(image: Image.Image) -> int:
    """pHash as ``imagehash.phash`` computes it, as a 64-bit int.

    Grey 32×32 (Lanczos), 2-D DCT, the 8×8 lowest frequencies compared with their median.
    """
    grey = image.convert("L").resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.LANCZOS)
    spectrum = _DCT @ np.asarray(grey, dtype=np.float64) @ _DCT.T
    low = spectrum[:_LOW_FREQUENCIES, :_LOW_FREQUENCIES].ravel()
    bits = np.packbits(low > np.median(low))
    return int.from_bytes(bits.tobytes(), "big")


def thumbnail(image: Image.Image) -> np.ndarray:
    """A 16×16 RGB thumbnail (box filter) as float32 ``(16, 16, 3)`` in [0, 255]."""
    small = image.convert("RGB").resize((_THUMBNAIL_SIDE,) * 2, Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32)


def hamming(a: int, b: int) -> int:
    """Bits that differ between two hashes."""
    return (a ^ b).bit_count()


def thumbnail_rms(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square difference of two thumbnails, in 0-255 units."""
    return float(np.sqrt(np.mean((a - b) ** 2)))


class HammingIndex:
    """64-bit codes searchable by Hamming radius, by multi-index hashing over 4 blocks of 16.

    Args:
        radius: the largest distance ``near`` is asked for (it sets the probes per block).
    """

    BLOCKS = 4
    _WIDTH = HASH_BITS // BLOCKS

    def __init__(self, radius: int) -> None:
        if not 0 <= radius < HASH_BITS:
            raise ValueError(f"near_duplicate_distance must be in [0, {HASH_BITS}), got {radius}")
        self.radius = radius
        self._buckets: list[dict[int, list[Hashable]]] = [{} for _ in range(self.BLOCKS)]
        self._codes: dict[Hashable, tuple[int, int]] = {}  # key → (insertion rank, code)
        self._masks = list(_masks(self._WIDTH, radius // self.BLOCKS))

    def __len__(self) -> int:
        return len(self._codes)

    def _blocks(self, code: int) -> Iterator[int]:
        mask = (1 << self._WIDTH) - 1
        for block in range(self.BLOCKS):
            yield (code >> (block * self._WIDTH)) & mask

    def add(self, key: Hashable, code: int) -> None:
        """Index ``code`` under ``key`` (a key is added once)."""
        self._codes[key] = (len(self._codes), code)
        for buckets, value in zip(self._buckets, self._blocks(code), strict=True):
            buckets.setdefault(value, []).append(key)

    def near(self, code: int) -> list[tuple[Hashable, int]]:
        """``(key, distance)`` of every indexed code within ``radius``, in insertion order."""
        found: dict[Hashable, int] = {}
        for buckets, value in zip(self._buckets, self._blocks(code), strict=True):
            for mask in self._masks:
                for key in buckets.get(value ^ mask, ()):
                    if key not in found:
                        found[key] = hamming(code, self._codes[key][1])
        hits = [(key, distance) for key, distance in found.items() if distance <= self.radius]
        return sorted(hits, key=lambda hit: self._codes[hit[0]][0])


def _masks(width: int, bits: int) -> Iterator[int]:
    """Every ``width``-bit mask with at most ``bits`` bits set."""
    for count in range(bits + 1):
        for positions in combinations(range(width), count):
            yield sum(1 << position for position in positions)


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
            for earlier, pending_code in self._pending:
                self._index.add(earlier, pending_code)
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
