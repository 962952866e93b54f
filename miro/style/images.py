"""The images ``python -m miro.stylize`` reads and writes, on top of ``miro.imageio``."""

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from miro import imageio
from miro.imageio import IMAGE_SUFFIXES, UnreadableImageError
from miro.style.errors import InputError

__all__ = ["UnreadableImageError", "find_inputs", "load_image", "save_image"]


def find_inputs(path: Path, exclude: Path | None = None) -> list[Path]:
    """``[path]`` for a file (whatever its suffix; a non-image is reported as unreadable);
    for a folder, its images by suffix, recursively, sorted, leaving out anything under
    ``exclude`` (earlier outputs written inside the input folder)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(
            f"input {path} does not exist; give an image file or a folder of images as input=PATH"
        )
    files = imageio.find_images(path)
    if exclude is not None:
        exclude = exclude.resolve()
        files = [file for file in files if not file.resolve().is_relative_to(exclude)]
    if not files:
        raise InputError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {path}")
    return files


def load_image(path: Path, max_size: int | None = None) -> torch.Tensor:
    """An upright RGB image ``(3, H, W)`` float in [0, 1], downscaled (antialiased) so that its
    long side is at most ``max_size``; never upscaled. Raises ``UnreadableImageError``."""
    image = imageio.read_image(path).float().div_(255)
    height, width = image.shape[1:]
    if max_size is not None and max(height, width) > max_size:
        scale = max_size / max(height, width)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        image = F.interpolate(image[None], size=size, mode="bicubic", antialias=True)[0]
        image = image.clamp_(0, 1)
    return image


def save_image(image: torch.Tensor, path: Path) -> None:
    """Write ``(3, H, W)`` in [0, 1] as an 8-bit RGB image; the format follows the suffix."""
    array = image.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.cpu().numpy()).save(path)
