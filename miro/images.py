"""The one place miro reads, resizes, converts and saves images: any folder of photos, where
one bad file is skipped and counted, never the end of a run.

In memory an image is a ``(3, H, W)`` RGB tensor: uint8 straight from the file
(``read_image``), float in [0, 1] everywhere else (``load_image``, models, dreams, stylized
images). Reading applies EXIF orientation, composites transparency on white and converts
palette/CMYK/16-bit; large JPEGs decode at a reduced scale when the caller says how small they
will end up (``min_side``), which is most of the decoding time. The guards themselves (pixel
cap, full decode, orientation, mode) are ``data_pipeline.images.open_image``, shared with the
dataset build. Writing goes through torchvision (``save_image``, ``to_pil_image``).

Example::

    paths = find_images("photos/")                 # every image below, sorted
    image = read_image(paths[0], min_side=512)     # (3, H, W) uint8, short side still >= 512
    style = load_image("blue_ii.jpg", short_side=256)  # (3, 256, W') float in [0, 1]
    photo = load_image("photo.jpg", max_size=1024)     # long side at most 1024, never upscaled
    save_image(photo, "out/photo.png")                 # 8-bit RGB, format from the suffix
"""

import glob
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision.utils
from PIL import Image
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from data_pipeline.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    UnreadableImage,
    image_size,
    open_image,
)

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


def read_cached_image(path: str | Path) -> torch.Tensor:
    """An image of a built dataset's cache (upright RGB JPEG, written by ``data_pipeline.build``)
    as ``(3, H, W)`` uint8, through torchvision's decoder: the training loader's fast path,
    which skips ``read_image``'s guards because the build applied them."""
    return decode_image(str(path), mode=ImageReadMode.RGB)


def load_image(
    path: str | Path, short_side: int | None = None, max_size: int | None = None
) -> torch.Tensor:
    """``path`` as ``(3, H, W)`` float in [0, 1], resized (bicubic, antialiased) so that its
    short side is ``short_side`` when given, or else downscaled so that its long side is at most
    ``max_size`` (never upscaled). Raises ``UnreadableImageError``."""
    image = read_image(path, min_side=short_side).float().div_(255)
    height, width = image.shape[1:]
    if short_side is not None and short_side != min(height, width):
        size = [short_side]
    elif short_side is None and max_size is not None and max(height, width) > max_size:
        scale = max_size / max(height, width)
        size = [max(1, round(height * scale)), max(1, round(width * scale))]
    else:
        return image
    return TF.resize(image, size, InterpolationMode.BICUBIC, antialias=True).clamp_(0, 1)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """One image ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1] → ``(3, H, W)`` uint8, rounded."""
    if image.dim() == 4:
        if len(image) != 1:
            raise ValueError(f"expected one image; got a batch of {len(image)}")
        image = image[0]
    return image.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


def to_array(image: torch.Tensor) -> np.ndarray:
    """One image ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1] → an ``(H, W, 3)`` uint8 array
    (video frames, W&B images)."""
    return to_uint8(image).permute(1, 2, 0).numpy()


def to_pil(image: torch.Tensor) -> Image.Image:
    """One image ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1] → an 8-bit RGB PIL image."""
    return TF.to_pil_image(to_uint8(image))


def save_image(image: torch.Tensor, path: str | Path) -> None:
    """Write ``(3, H, W)`` in [0, 1] as an 8-bit RGB image (torchvision's ``save_image``); the
    format follows the suffix, missing folders are made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torchvision.utils.save_image(image.detach().float(), path)


def eval_transform(image_size: int) -> v2.Transform:
    """How val/test images (and retrieval's) are seen: short side to ``image_size``, center
    crop, uint8 → float in [0, 1]."""
    return v2.Compose(
        [
            v2.Resize(image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
