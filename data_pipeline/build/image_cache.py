"""Cache post images resized into a content-addressed JPEG folder, ``DATASET/images/``.

A cached file is named by a hash of the source bytes and the resize parameters, so an unchanged
re-run finds every image without decoding it, and a changed image or parameter gets a new file.
Each cached image also carries what duplicate detection needs: a hash of the cached bytes and a
perceptual hash (``data_pipeline.build.dedupe``), both computed from the cached file itself.
Sources are opened through ``data_pipeline.images.open_image``.

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

from PIL import Image
from tqdm import tqdm

from data_pipeline.build.dedupe import SIGNATURE_VERSION, perceptual_hash
from data_pipeline.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_UNREADABLE,
    UnreadableImage,
    image_size,
    open_image,
)

IMAGE_DIR = "images"
# Bump when decoding or resizing changes its output, so old cache files are not reused.
CACHE_VERSION = 1
# JPEG draft decoding keeps at least this many times the target short side (measured: 2x is
# 2.5-3x faster than a full decode of a 1080 px photo and 44 dB from it; 1x is 35 dB).
DRAFT_MARGIN = 2
# The decoded size that perceptual hashes and duplicate thumbnails are computed from.
SIGNATURE_SIDE = 64

IMAGE_TOO_SMALL = "image_too_small"


class ImageTooSmall(UnreadableImage):
    """A short side below the build's ``min_image_side``."""

    reason = IMAGE_TOO_SMALL


@dataclass(frozen=True)
class ResizeSpec:
    """How images are checked and cached.

    Args:
        short_side: the short side of a cached image in pixels; smaller images keep their size.
        jpeg_quality: quality of the cached JPEGs (1-95).
        max_pixels: larger images are refused as decompression bombs, before decoding.
        min_side: images whose short side is smaller are refused (``image_too_small``).
        draft: decode JPEGs at a reduced DCT scale when the target is well below the source.
    """

    short_side: int = 256
    jpeg_quality: int = 90
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = 1
    draft: bool = True

    def cache_key(self) -> bytes:
        """What changes the cached bytes (the checks only decide whether a file is made)."""
        return f"v{CACHE_VERSION}:{self.short_side}:{self.jpeg_quality}".encode()

    def outcome_key(self) -> str:
        """What changes the outcome of caching a source: its file and hashes, or the drop reason."""
        draft = f":d{DRAFT_MARGIN}" if self.draft else ""
        return (
            f"{self.cache_key().decode()}:{self.max_pixels}:{self.min_side}{draft}"
            f":s{SIGNATURE_VERSION}"
        )


@dataclass(frozen=True)
class CachedImage:
    """A cached image.

    ``path`` is relative to the dataset dir, ``width``/``height`` its size; ``content_hash`` is
    a hash of the cached file's bytes (equal pixels in, equal bytes out) and ``phash`` its 64-bit
    perceptual hash.
    """

    source: Path
    path: str
    width: int
    height: int
    content_hash: str
    phash: int


@dataclass(frozen=True)
class ImageDrop:
    """Why no image of a post could be cached: one of the ``IMAGE_*`` reasons."""

    reason: str
    detail: str = ""


def resized_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """``(width, height)`` scaled so the short side is ``short_side``; never upscaled."""
    width, height = size
    if min(width, height) <= short_side:
        return width, height
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


def decode_image(data: bytes, spec: ResizeSpec) -> Image.Image:
    """Image bytes → an upright RGB image resized per ``spec`` (raises as ``open_image``)."""
    width, height = image_size(data, spec.max_pixels)
    if min(width, height) < spec.min_side:
        raise ImageTooSmall(f"{width}x{height}: short side below min_image_side={spec.min_side}")
    draft = spec.short_side * DRAFT_MARGIN if spec.draft else None
    image = open_image(data, max_pixels=spec.max_pixels, draft_short_side=draft)
    if (image.width > image.height) != (width > height):  # EXIF turned it a quarter
        width, height = height, width
    # The target comes from the full size, so drafting never changes the output's size.
    target = resized_size((width, height), spec.short_side)
    return image if target == image.size else image.resize(target, Image.Resampling.LANCZOS)


def signature_view(source: str | Path | bytes) -> Image.Image:
    """A cached image decoded small (short side >= 64 px): what duplicate signatures read."""
    return open_image(source, draft_short_side=SIGNATURE_SIDE)


def cached_path(data: bytes, spec: ResizeSpec) -> str:
    """The cache file of these source bytes under ``spec``, relative to the dataset dir."""
    digest = hashlib.blake2b(spec.cache_key(), digest_size=20)
    digest.update(data)
    name = digest.hexdigest()
    return f"{IMAGE_DIR}/{name[:2]}/{name}.jpg"


def _describe(source: Path, relative: str, cached: bytes) -> CachedImage:
    view = signature_view(cached)
    with Image.open(io.BytesIO(cached)) as header:
        size = header.size
    content_hash = hashlib.blake2b(cached, digest_size=16).hexdigest()
    return CachedImage(source, relative, *size, content_hash, perceptual_hash(view))


def cache_image(
    candidates: Sequence[Path], dataset_dir: Path, spec: ResizeSpec
) -> CachedImage | ImageDrop:
    """Cache the first candidate that passes the checks (carousel order).

    A cache hit reads the source's header and the small cached file, never decodes the source.
    New files are written atomically, so an interrupted build never leaves a half-written image
    to be reused. When no candidate passes, the first candidate's reason is returned.
    """
    failures = []
    for source in candidates:
        try:
            data = source.read_bytes()
            relative = cached_path(data, spec)
            target = dataset_dir / relative
            width, height = image_size(data, spec.max_pixels)
            if min(width, height) < spec.min_side:
                raise ImageTooSmall(f"{width}x{height} below min_image_side={spec.min_side}")
            try:
                return _describe(source, relative, target.read_bytes())
            except (OSError, UnreadableImage):  # not cached yet, or a damaged file to rewrite
                pass
            buffer = io.BytesIO()
            decode_image(data, spec).save(buffer, "JPEG", quality=spec.jpeg_quality)
        except OSError as error:
            failures.append(ImageDrop(IMAGE_UNREADABLE, f"{source}: {error}"))
            continue
        except UnreadableImage as error:
            failures.append(ImageDrop(error.reason, f"{source}: {error}"))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial_file = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial_file.write_bytes(buffer.getvalue())
        os.replace(partial_file, target)
        return _describe(source, relative, buffer.getvalue())
    return failures[0] if failures else ImageDrop(IMAGE_UNREADABLE, "the post has no image")


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cache_images(
    candidates: Sequence[Sequence[Path]],
    dataset_dir: Path,
    spec: ResizeSpec,
    workers: int | None = None,
    progress: bool = True,
) -> list[CachedImage | ImageDrop]:
    """``cache_image`` for each post's candidates, in a pool of ``workers`` processes.

    ``workers`` None uses every core; 0 or 1 works in this process. Results keep the order of
    ``candidates``, and are the same whatever the number of workers.
    """
    workers = default_workers() if workers is None else workers
    work = partial(cache_image, dataset_dir=Path(dataset_dir), spec=spec)
    with ExitStack() as stack:
        results: Iterable[CachedImage | ImageDrop] = map(work, candidates)
        if workers > 1 and len(candidates) > 1:
            pool = stack.enter_context(multiprocessing.Pool(min(workers, len(candidates))))
            chunksize = max(1, min(32, len(candidates) // (8 * workers)))
            results = pool.imap(work, candidates, chunksize)
        bar = stack.enter_context(
            tqdm(total=len(candidates), desc="images", unit="img", disable=not progress)
        )
        cached = []
        for result in results:
            cached.append(result)
            bar.update()
    return cached
