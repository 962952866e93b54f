"""Stylize images too big for memory in overlapping tiles, without seams.

Two things differ between a tile and the whole image:

1. **Instance-norm statistics.** Every norm normalizes by its input's mean and variance over the
   whole image; a tile alone would use its own, so a sky tile and a face tile would get different
   contrast and colour, and seams would show however well the tiles are blended. So we run the
   network once on the whole image, downscaled to at most ``above_pixels`` (the image itself when
   it is that small: then the statistics are exact), record each norm's per-image mean and
   variance, and normalize every tile with those: the network is the same function on every
   tile. Above ``above_pixels`` (4 MP by default) the statistics are those of the downscaled
   image, close for photographs (their statistics are roughly scale-invariant) but not exact;
   exact ones would take a tiled pass per norm layer (16), and refining them with one extra
   tiled pass makes things worse (measured), because each layer's statistics must come from
   the same pass as those of the layers before it.
2. **Borders.** Near a tile's edge the convolutions see reflection padding instead of the
   neighbouring pixels (the receptive field reaches ~54 px; the error fades to ~0 at ~48 px).
   Tiles overlap by ``overlap`` pixels; towards an inner edge a tile's blending weight is 0 over
   the outer quarter of the overlap and rises as sin² over the middle half (two neighbours' weights
   sum to 1), so each pixel comes from the tiles that see its surroundings, with no hard cut.
   Tile origins are multiples of 4, so every tile samples the stride-2 grid as the whole image.

Example::

    out = tiled_forward(stylizer, padded_images, weights, Tiling(enabled=True, tile_size=512))
"""

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from miro.models.stylizer import ConditionalInstanceNorm2d, Stylizer
from miro.style.errors import SettingsError


@dataclass(frozen=True)
class Tiling:
    """When and how to tile.

    Args:
        enabled: ``"auto"`` tiles images above ``above_pixels``; True always, False never.
        tile_size: side of a tile in pixels, a multiple of 4.
        overlap: pixels shared by neighbouring tiles, a multiple of 4, at most ``tile_size / 2``.
        above_pixels: the size (H·W) above which ``"auto"`` tiles; also the most pixels the
            statistics pass runs on.
    """

    enabled: bool | str = "auto"
    tile_size: int = 512
    overlap: int = 128
    above_pixels: int = 2048 * 2048

    def __post_init__(self) -> None:
        if self.enabled not in (True, False, "auto"):
            raise SettingsError(f"tile must be auto, true or false, got {self.enabled!r}")
        if self.tile_size < 16 or self.tile_size % 4:
            raise SettingsError(
                f"tile_size={self.tile_size} must be a multiple of 4 and at least 16, e.g. 512"
            )
        if self.overlap < 0 or self.overlap % 4 or 2 * self.overlap > self.tile_size:
            raise SettingsError(
                f"tile_overlap={self.overlap} must be a multiple of 4 between 0 and "
                f"tile_size/2={self.tile_size // 2}, e.g. 128"
            )
        if self.above_pixels < 64:
            raise SettingsError(f"tile_above_pixels={self.above_pixels} must be at least 64")

    def applies(self, height: int, width: int) -> bool:
        if self.enabled == "auto":
            return height * width > self.above_pixels
        return bool(self.enabled)


class _RecordingNorm(nn.Module):
    """Instance norm (no affine) that keeps the per-image mean and variance it used."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.statistics: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=(2, 3), correction=0, keepdim=True)
        self.statistics = (mean, var)
        return (x - mean) * torch.rsqrt(var + self.eps)


class _FrozenNorm(nn.Module):
    """Instance norm (no affine) with statistics given from outside."""

    def __init__(self, statistics: tuple[torch.Tensor, torch.Tensor], eps: float) -> None:
        super().__init__()
        self.mean, var = statistics
        self.inv_std = torch.rsqrt(var + eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


@contextmanager
def _replaced_norms(
    stylizer: Stylizer, make: Callable[[int, float], nn.Module]
) -> Iterator[list[nn.Module]]:
    """Swap the plain instance norm inside every conditional norm for ``make(index, eps)``."""
    conditional = [m for m in stylizer.modules() if isinstance(m, ConditionalInstanceNorm2d)]
    originals = [m.norm for m in conditional]
    try:
        for index, module in enumerate(conditional):
            module.norm = make(index, module.norm.eps)
        yield [module.norm for module in conditional]
    finally:
        for module, original in zip(conditional, originals, strict=True):
            module.norm = original


def norm_statistics(
    stylizer: Stylizer, images: torch.Tensor, weights: torch.Tensor, max_pixels: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each norm's per-image ``(mean, var)``, ``(B, C, 1, 1)``, over the whole image, measured
    on ``images`` downscaled (area) to at most ``max_pixels``."""
    height, width = images.shape[-2:]
    scale = min(1.0, math.sqrt(max_pixels / (height * width)))
    if scale < 1:
        size = (max(8, round(height * scale / 4) * 4), max(8, round(width * scale / 4) * 4))
        images = F.interpolate(images, size=size, mode="area")
    with _replaced_norms(stylizer, lambda _, eps: _RecordingNorm(eps)) as recorders:
        stylizer(images, weights)
    return [recorder.statistics for recorder in recorders]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis (multiples of 4 when ``length``, ``tile``, ``overlap`` are);
    the last tile ends at ``length``."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return [*starts, length - tile]


def ramp(length: int, overlap: int, fade_start: bool, fade_end: bool) -> torch.Tensor:
    """1-D blending weights of a tile; towards an inner edge: 0 over the outer quarter of the
    overlap (where the tile's own padding corrupts it most), a sin² rise over the middle half,
    then 1. Two neighbours overlapping by ``overlap`` pixels sum to 1 everywhere."""
    weights = torch.ones(length)
    margin, width = overlap // 4, overlap - 2 * (overlap // 4)
    if width == 0:
        return weights
    fade = torch.ones(overlap)
    fade[:margin] = 0
    fade[margin : margin + width] = (
        torch.sin(0.5 * math.pi * (torch.arange(width) + 0.5) / width) ** 2
    )
    if fade_start:
        weights[:overlap] = fade
    if fade_end:
        weights[-overlap:] = torch.minimum(weights[-overlap:], fade.flip(0))
    return weights


def tiled_forward(
    stylizer: Stylizer, images: torch.Tensor, weights: torch.Tensor, tiling: Tiling
) -> torch.Tensor:
    """``stylizer(images, weights)`` computed tile by tile (see the module docstring).

    ``images`` ``(B, 3, H, W)`` in [0, 1] with H, W multiples of 4; ``weights`` ``(B, N)``.
    """
    height, width = images.shape[-2:]
    statistics = norm_statistics(stylizer, images, weights, tiling.above_pixels)
    total = images.new_zeros(images.shape)
    norm = images.new_zeros((1, 1, height, width))
    tile, overlap = tiling.tile_size, tiling.overlap
    rows, columns = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    with _replaced_norms(stylizer, lambda i, eps: _FrozenNorm(statistics[i], eps)):
        for top in rows:
            bottom = min(top + tile, height)
            row_weights = ramp(bottom - top, overlap, top > 0, bottom < height)
            for left in columns:
                right = min(left + tile, width)
                column_weights = ramp(right - left, overlap, left > 0, right < width)
                window = (row_weights[:, None] * column_weights[None, :]).to(images)
                out = stylizer(images[..., top:bottom, left:right], weights)
                total[..., top:bottom, left:right] += out * window
                norm[..., top:bottom, left:right] += window
    return total / norm
