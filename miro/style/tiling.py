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
   the same pass as those of the layers before it. The statistics pass and the tiles run
   ``Stylizer.infer`` (one image at a time), whose ``norm`` step records and then freezes them.
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
from dataclasses import dataclass

import torch
import torch.nn.functional as F

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


def norm_statistics(
    stylizer: Stylizer, image: torch.Tensor, weights: torch.Tensor, max_pixels: int
) -> dict[ConditionalInstanceNorm2d, tuple[torch.Tensor, torch.Tensor]]:
    """Each norm's ``(mean, var)``, ``(C,)``, over the whole of one ``image`` ``(1, 3, H, W)``,
    measured on it downscaled (area) to at most ``max_pixels``."""
    height, width = image.shape[-2:]
    scale = min(1.0, math.sqrt(max_pixels / (height * width)))
    if scale < 1:
        size = (max(8, round(height * scale / 4) * 4), max(8, round(width * scale / 4) * 4))
        image = F.interpolate(image, size=size, mode="area")
    statistics = {}

    def record(norm: ConditionalInstanceNorm2d, x: torch.Tensor, row: torch.Tensor) -> None:
        statistics[norm] = norm.normalize_(x, row)

    stylizer.infer(image, weights, norm=record)
    return statistics


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
    rows = zip(images.split(1), weights.split(1), strict=True)
    return torch.cat([_tiled_image(stylizer, image, row, tiling) for image, row in rows])


def _tiled_image(
    stylizer: Stylizer, image: torch.Tensor, weights: torch.Tensor, tiling: Tiling
) -> torch.Tensor:
    height, width = image.shape[-2:]
    statistics = norm_statistics(stylizer, image, weights, tiling.above_pixels)

    def frozen(norm: ConditionalInstanceNorm2d, x: torch.Tensor, row: torch.Tensor) -> None:
        norm.normalize_(x, row, *statistics[norm])

    total = image.new_zeros(image.shape)
    coverage = image.new_zeros((1, 1, height, width))
    tile, overlap = tiling.tile_size, tiling.overlap
    rows, columns = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    for top in rows:
        bottom = min(top + tile, height)
        row_weights = ramp(bottom - top, overlap, top > 0, bottom < height)
        for left in columns:
            right = min(left + tile, width)
            column_weights = ramp(right - left, overlap, left > 0, right < width)
            window = (row_weights[:, None] * column_weights[None, :]).to(image)
            out = stylizer.infer(image[..., top:bottom, left:right], weights, norm=frozen)
            total[..., top:bottom, left:right] += out * window
            coverage[..., top:bottom, left:right] += window
    return total / coverage
