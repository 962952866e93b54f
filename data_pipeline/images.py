"""Open images safely: the project's one guarded way to read an image file.

``open_image`` is shared by the dataset build (``data_pipeline.build.image_cache``) and
``miro``: a pixel cap read from the header before decoding (decompression bombs), a full decode
(truncated files fail here rather than in training), EXIF orientation applied and any mode made
RGB. ``IMAGE_SUFFIXES`` says which files are images.

Example::

    image = open_image("photo.jpg", draft_short_side=256)  # RGB, upright, decoded at >= 256 px
    image_size("photo.jpg")  # (1080, 1350), from the header alone
"""

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# The suffixes (lowercase) of image files: what a folder of photos or styles is searched for.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
DEFAULT_MAX_PIXELS = 40_000_000

IMAGE_UNREADABLE = "image_unreadable"
IMAGE_TOO_LARGE = "image_too_large"


class UnreadableImage(Exception):
    """An image that is missing, corrupt, truncated or in an unknown format."""

    reason = IMAGE_UNREADABLE


class ImageTooLarge(UnreadableImage):
    """More pixels than the cap: a decompression bomb, refused before decoding."""

    reason = IMAGE_TOO_LARGE


def open_image(
    source: str | Path | bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_short_side: int | None = None,
) -> Image.Image:
    """Open, fully decode, orient and convert an image to RGB; the guards in one place.

    Args:
        source: a file path or the file's bytes.
        max_pixels: larger images (by their header) raise ``ImageTooLarge`` before decoding;
            Pillow's own ``DecompressionBombError`` (above 2 × ``Image.MAX_IMAGE_PIXELS``)
            raises it too.
        draft_short_side: the caller will shrink the image to about this short side; JPEGs then
            decode at the smallest DCT scale (1/2, 1/4, 1/8) that keeps the short side >= it.

    Raises:
        ImageTooLarge: too many pixels.
        UnreadableImage: anything Pillow cannot open and fully decode.
    """
    with _open_checked(source, max_pixels) as image:
        try:
            width, height = image.size
            if (
                draft_short_side
                and image.format == "JPEG"
                and min(width, height) > draft_short_side
            ):
                scale = draft_short_side / min(width, height)
                image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
            image.load()
            return to_rgb(_upright(image))
        except Exception as error:  # Pillow raises many types on hostile bytes: all unreadable.
            raise UnreadableImage(f"{type(error).__name__}: {error}") from error


def image_size(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` read from the header; raises as ``open_image``, without decoding."""
    with _open_checked(source, max_pixels) as image:
        return image.size


def _open_checked(source: str | Path | bytes, max_pixels: int) -> Image.Image:
    """The opened, not yet decoded image, once its header passed the size checks."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check ourselves
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(str(error)) from error
    except UnidentifiedImageError as error:
        raise UnreadableImage("not an image format Pillow knows") from error
    except Exception as error:
        raise UnreadableImage(f"{type(error).__name__}: {error}") from error
    width, height = image.size
    if width * height > max_pixels or width < 1 or height < 1:
        image.close()
        if width < 1 or height < 1:
            raise UnreadableImage(f"empty image {width}x{height}")
        raise ImageTooLarge(f"{width}x{height} pixels exceed max_image_pixels={max_pixels}")
    return image


def _upright(image: Image.Image) -> Image.Image:
    """The image as it is meant to be seen; damaged EXIF leaves it as stored."""
    try:
        return ImageOps.exif_transpose(image)
    except (ValueError, TypeError, KeyError, SyntaxError, OSError):
        return image


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
