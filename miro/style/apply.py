"""Stylize a batch of images: padding to the network's grid, style strength, colour preservation.

Example::

    loaded = load_stylizer(path)
    out = stylize(loaded.stylizer, images, torch.tensor([3]), strength=0.8, preserve_color=True)
"""

import torch
import torch.nn.functional as F

from miro.models.stylizer import Stylizer, style_weights
from miro.style.errors import SettingsError
from miro.style.tiling import Tiling, tiled_forward

MULTIPLE = 4  # two stride-2 convolutions
MIN_SIDE = 8  # the residual blocks' reflection padding needs ≥ 2 pixels at 1/4 resolution

# Full-range BT.601 (JPEG) YCbCr, chroma centred on 0.
RGB_TO_YCBCR = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)
YCBCR_TO_RGB = torch.linalg.inv(RGB_TO_YCBCR)


def pad_to_grid(images: torch.Tensor) -> torch.Tensor:
    """Pad ``(B, 3, H, W)`` at the bottom and right to multiples of 4 (at least 8) by reflection.

    Replicates instead where an image is too small to reflect. The pad is always applied (maybe
    by 0), so a traced export keeps it for every input size.
    """
    height, width = images.shape[-2], images.shape[-1]
    pad_h = max(MIN_SIDE - height, (-height) % MULTIPLE)
    pad_w = max(MIN_SIDE - width, (-width) % MULTIPLE)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)


def color_transform(images: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply a 3×3 colour matrix to ``(B, 3, H, W)`` (a 1×1 convolution: exports cleanly)."""
    return F.conv2d(images, matrix.to(images)[:, :, None, None])


def luminance_transfer(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance-only transfer: the stylized image's Y with the content's Cb and Cr.

    Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016). Both
    ``(B, 3, H, W)`` in [0, 1]; the result is clipped to [0, 1], so chroma is kept exactly
    except where a bright or dark stylized luminance cannot carry the content's colour.
    """
    luma = color_transform(stylized, RGB_TO_YCBCR)[:, :1]
    chroma = color_transform(content, RGB_TO_YCBCR)[:, 1:]
    return color_transform(torch.cat([luma, chroma], dim=1), YCBCR_TO_RGB).clamp(0, 1)


def blend_strength(stylized: torch.Tensor, content: torch.Tensor, strength: float) -> torch.Tensor:
    """``strength · stylized + (1 − strength) · content``: 0 gives the content, 1 the style."""
    return strength * stylized + (1 - strength) * content


def check_strength(strength: float) -> float:
    if (
        isinstance(strength, bool)
        or not isinstance(strength, int | float)
        or not (0 <= strength <= 1)
    ):
        raise SettingsError(f"strength must be between 0 and 1, got {strength!r}")
    return float(strength)


def as_weights(styles: torch.Tensor, num_styles: int, batch: int) -> torch.Tensor:
    """Style ids ``(B,)``, weights ``(B, N)`` or one weight row ``(N,)`` → ``(B, N)`` float."""
    if styles.dtype.is_floating_point and styles.dim() == 1:
        styles = styles.expand(batch, -1)
    return style_weights(styles, num_styles)


def stylize(
    stylizer: Stylizer,
    images: torch.Tensor,
    styles: torch.Tensor,
    strength: float = 1.0,
    preserve_color: bool = False,
    tiling: Tiling | None = None,
) -> torch.Tensor:
    """Stylize images of any size.

    Args:
        stylizer: the network, on the images' device.
        images: ``(B, 3, H, W)`` in [0, 1], any H and W.
        styles: style ids ``(B,)`` int64, mixing weights ``(B, num_styles)`` or one weight row
            ``(num_styles,)`` for every image.
        strength: 0 returns the content, 1 the full style.
        preserve_color: keep the content's chroma, take only the luminance from the style.
        tiling: when and how to cut big images into tiles; None never tiles.

    Returns:
        ``(B, 3, H, W)`` in [0, 1].
    """
    strength = check_strength(strength)
    height, width = images.shape[-2], images.shape[-1]
    weights = as_weights(styles, stylizer.num_styles, images.shape[0])
    padded = pad_to_grid(images)
    if tiling is not None and tiling.applies(height, width):
        stylized = tiled_forward(stylizer, padded, weights, tiling)
    else:
        stylized = stylizer(padded, weights)
    stylized = stylized[..., :height, :width]
    if preserve_color:
        stylized = luminance_transfer(stylized, images)
    return blend_strength(stylized, images, strength)
