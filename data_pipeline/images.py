"""Decode, verify, orient and resize post images into a content-addressed JPEG cache.

A cached file is named by a hash of the source bytes and the resize parameters, so an unchanged
re-run finds every image without decoding it, and a changed image or parameter gets a new file.
Decoding is full (``load()``), so truncated files fail here rather than in training.

Example::

    spec = ResizeSpec(short_side=256)
    cached = cache_images([[Path("raw/2024-01-01_10-00-00_UTC.jpg")]], Path("dataset"), spec)
    cached[0].path  # 'images/3f/3fa2....jpg', an RGB JPEG whose short side is 256
"""

import hashlib
import io
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

IMAGE_DIR = "images"
# Bump when decoding or resizing changes its output, so old cache files are not reused.
CACHE_VERSION = 1
# JPEG draft decoding may shrink to no less than this many times the target size.
DRAFT_MARGIN = 2


class UnreadableImage(Exception):
    """An image that is missing, corrupt, truncated, too large or in an unknown format."""


@dataclass(frozen=True)
class ResizeSpec:
    """How images are cached.

    Args:
        short_side: the short side of a cached image in pixels; smaller images keep their size.
        jpeg_quality: quality of the cached JPEGs (1-95).
        max_pixels: larger images are refused as decompression bombs, before decoding.
    """

    short_side: int = 256
    jpeg_quality: int = 90
    max_pixels: int = 40_000_000

    def cache_key(self) -> bytes:
        """What changes the cached bytes (``max_pixels`` only decides whether one is made)."""
        return f"v{CACHE_VERSION}:{self.short_side}:{self.jpeg_quality}".encode()


@dataclass(frozen=True)
class CachedImage:
    """A cached image: ``path`` is relative to the dataset dir; ``width``/``height`` its size."""

    source: Path
    path: str
    width: int
    height: int


def resized_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """``(width, height)`` scaled so the short side is ``short_side``; never upscaled."""
    width, height = size
    if min(width, height) <= short_side:
        return width, height
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


def decode_image(data: bytes, spec: ResizeSpec) -> Image.Image:
    """Decode image bytes into an upright RGB image, resized per ``spec``.

    EXIF orientation is applied; alpha is composited on white; 16-bit and palette images are
    converted. Raises ``UnreadableImage`` for anything Pillow cannot fully decode.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > spec.max_pixels:
                raise UnreadableImage(
                    f"{width}x{height} pixels exceed max_image_pixels={spec.max_pixels}"
                )
            target = resized_size((width, height), spec.short_side)
            if image.format == "JPEG" and target[0] * DRAFT_MARGIN <= width:
                image.draft("RGB", (target[0] * DRAFT_MARGIN, target[1] * DRAFT_MARGIN))
            image.load()
            image = to_rgb(ImageOps.exif_transpose(image))
    except UnreadableImage:
        raise
    except Exception as error:  # Pillow raises many types on hostile bytes; all mean unreadable.
        raise UnreadableImage(f"{type(error).__name__}: {error}") from error
    target = resized_size(image.size, spec.short_side)
    return image if target == image.size else image.resize(target, Image.Resampling.LANCZOS)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode (CMYK, P, LA, RGBA, I;16, ...) as RGB; transparency becomes white."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257  # 16-bit range onto 8 bits
        image = Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8), "L")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def cached_path(data: bytes, spec: ResizeSpec) -> str:
    """The cache file of these source bytes under ``spec``, relative to the dataset dir."""
    digest = hashlib.blake2b(spec.cache_key(), digest_size=20)
    digest.update(data)
    name = digest.hexdigest()
    return f"{IMAGE_DIR}/{name[:2]}/{name}.jpg"


def cache_image(
    candidates: Sequence[Path], dataset_dir: Path, spec: ResizeSpec
) -> CachedImage | None:
    """Cache the first candidate that decodes (carousel order); None when none does.

    A cache hit reads only the cached file's header. New files are written atomically, so an
    interrupted build never leaves a half-written image to be reused.
    """
    for source in candidates:
        try:
            data = source.read_bytes()
        except OSError:
            continue
        relative = cached_path(data, spec)
        target = dataset_dir / relative
        size = _cached_size(target)
        if size is not None:
            return CachedImage(source, relative, *size)
        try:
            image = decode_image(data, spec)
        except UnreadableImage:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial_file = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        image.save(partial_file, "JPEG", quality=spec.jpeg_quality)
        os.replace(partial_file, target)
        return CachedImage(source, relative, *image.size)
    return None


def _cached_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as cached:
            return cached.size
    except OSError:  # not cached yet, or a damaged cache file to rewrite
        return None


def cache_images(
    candidates: Sequence[Sequence[Path]],
    dataset_dir: Path,
    spec: ResizeSpec,
    num_workers: int = 2,
    progress: bool = True,
) -> list[CachedImage | None]:
    """``cache_image`` for each post's candidates, in a pool of ``num_workers`` processes.

    ``num_workers`` of 0 or 1 works in this process. Results keep the order of ``candidates``.
    """
    work = partial(cache_image, dataset_dir=Path(dataset_dir), spec=spec)
    with ExitStack() as stack:
        results: Iterable[CachedImage | None] = map(work, candidates)
        if num_workers > 1:
            pool = stack.enter_context(multiprocessing.Pool(num_workers))
            chunksize = max(1, min(64, len(candidates) // (8 * num_workers)))
            results = pool.imap(work, candidates, chunksize)
        bar = stack.enter_context(
            tqdm(total=len(candidates), desc="images", unit="img", disable=not progress)
        )
        cached = []
        for result in results:
            cached.append(result)
            bar.update()
    return cached
