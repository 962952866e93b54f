"""Safe image loading for the data modules: any folder of photos, where one bad file is skipped
and counted, never the end of a run.

Images come back as ``(3, H, W)`` uint8 RGB tensors: EXIF orientation applied, transparency
composited on white, palette/CMYK/16-bit converted. Large JPEGs decode at a reduced scale when
the caller says how small they will end up (``min_side``), which is most of the decoding time.
The guards themselves (pixel cap, full decode, orientation, mode) are
``data_pipeline.images.open_image``, shared with the dataset build.

Example::

    paths = find_images("photos/")                 # every image below, sorted
    image = read_image(paths[0], min_side=512)     # (3, H, W) uint8, short side still >= 512
    style = load_image("blue_ii.jpg", short_side=256)  # (3, 256, W') float in [0, 1]
"""

import glob
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from data_pipeline.images import DEFAULT_MAX_PIXELS, UnreadableImage, image_size, open_image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
# Larger images are refused as decompression bombs before decoding (as data_pipeline.build does).
MAX_PIXELS = DEFAULT_MAX_PIXELS


class UnreadableImageError(OSError):
    """An image that is missing, corrupt, truncated, too large or in an unknown format."""


class ImagesNotFoundError(FileNotFoundError):
    """Entries of an image list that name no image: ``missing`` holds them."""

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        super().__init__(f"no image at {', '.join(self.missing)}")


def find_images(folder: str | Path) -> list[Path]:
    """Image files (by suffix, any case) below ``folder``, recursively, sorted; hidden files and
    folders are left out."""
    folder = Path(folder)
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
    )


def expand_image_paths(entries: Sequence[str | Path]) -> list[Path]:
    """Files, folders (every image inside, sorted) or glob patterns → image paths, in order.

    Raises ``ImagesNotFoundError`` naming every entry that gives no image.
    """
    paths, missing = [], []
    for entry in entries:
        entry = Path(entry).expanduser()
        if entry.is_dir():
            found = find_images(entry)
        elif glob.has_magic(str(entry)):
            found = [
                Path(p)
                for p in sorted(glob.glob(str(entry), recursive=True))
                if Path(p).suffix.lower() in IMAGE_SUFFIXES
            ]
        else:
            found = [entry] if entry.is_file() else []
        if not found:
            missing.append(str(entry))
        paths += found
    if missing:
        raise ImagesNotFoundError(missing)
    return paths


def is_readable(path: str | Path) -> bool:
    """Whether ``path`` opens as an image of a sane size: a header check, no decoding."""
    try:
        image_size(path, MAX_PIXELS)
    except UnreadableImage:
        return False
    return True


def read_image(path: str | Path, min_side: int | None = None) -> torch.Tensor:
    """Decode ``path`` into an upright RGB ``(3, H, W)`` uint8 tensor.

    Args:
        min_side: the caller will shrink the image until its short side is this; JPEGs then
            decode at the smallest DCT scale that keeps the short side at least this long.

    Raises ``UnreadableImageError`` for anything Pillow cannot fully decode.
    """
    try:
        image = open_image(path, max_pixels=MAX_PIXELS, draft_short_side=min_side)
    except UnreadableImage as err:
        raise UnreadableImageError(f"{path}: {err}") from err
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()


def load_image(path: str | Path, short_side: int | None = None) -> torch.Tensor:
    """``path`` as ``(3, H, W)`` float in [0, 1], resized (antialiased) so that its short side is
    ``short_side`` when given."""
    image = read_image(path, min_side=short_side)
    if short_side is not None and min(image.shape[1:]) != short_side:
        image = TF.resize(image, [short_side], antialias=True)
    return image.float() / 255
