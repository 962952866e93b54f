"""The gradient of a dream objective with respect to the image, whole or tile by tile.

Large images do not fit a forward and backward pass in memory, so the TensorFlow DeepDream
tutorial ("DeepDream", tensorflow.org, section "Scaling up with tiles") computes the gradient
tile by tile and rolls the image by a random shift before each step, so tile borders fall
somewhere else every step and no seam builds up. Here tiles split each axis evenly (no sliver
of a tile at the end), and each tile's score is weighted by its share of the image, so a mean
over positions (``layer``, ``channel``) has the same scale in every tile. An image no larger
than one tile is one forward pass, exactly the untiled gradient.

Example::

    grad = objective_gradient(model, objective, images, tile_size=512)   # (B, 3, H, W)
"""

import itertools
import math

import torch

from miro.deepdream.models import DreamModel
from miro.deepdream.objectives import Objective


def tile_spans(length: int, tile_size: int | None) -> list[tuple[int, int]]:
    """``(start, stop)`` of the fewest tiles of at most ``tile_size`` that cover ``length``,
    of (nearly) equal sizes; one span when ``tile_size`` is None or not smaller than ``length``.
    """
    count = 1 if tile_size is None else math.ceil(length / tile_size)
    bounds = [round(i * length / count) for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


def needs_tiles(height: int, width: int, tile_size: int | None) -> bool:
    return tile_size is not None and max(height, width) > tile_size


def objective_gradient(
    model: DreamModel,
    objective: Objective,
    images: torch.Tensor,
    tile_size: int | None = 512,
    memory_format: torch.memory_format = torch.contiguous_format,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Gradient of ``objective`` (summed over the batch) with respect to ``images``
    ``(B, 3, H, W)`` in [0, 1], computed on tiles of at most ``tile_size`` pixels a side
    (None: never tiled). Returns a tensor shaped like ``images``; nothing leaves the device.

    Args:
        memory_format: the layout the network runs in (``torch.channels_last`` is faster on
            CPUs; the model should be converted to it too).
        dtype: the network runs under autocast to this type (``torch.bfloat16``) unless it is
            float32; the objective and the gradient are always float32.
    """
    height, width = images.shape[-2:]
    rows, columns = tile_spans(height, tile_size), tile_spans(width, tile_size)
    if len(rows) == len(columns) == 1:
        return _gradient(model, objective, images, memory_format, dtype, 1.0)
    grad = torch.empty_like(images)
    for top, bottom in rows:
        for left, right in columns:
            share = (bottom - top) * (right - left) / (height * width)
            tile = images[..., top:bottom, left:right]
            grad[..., top:bottom, left:right] = _gradient(
                model, objective, tile, memory_format, dtype, share
            )
    return grad


def _gradient(
    model: DreamModel,
    objective: Objective,
    images: torch.Tensor,
    memory_format: torch.memory_format,
    dtype: torch.dtype,
    weight: float,
) -> torch.Tensor:
    with torch.enable_grad():
        images = images.detach().contiguous(memory_format=memory_format).requires_grad_(True)
        with torch.autocast(images.device.type, dtype, enabled=dtype != torch.float32):
            activations = model(images, objective.layers)
        score = objective({name: a.float() for name, a in activations.items()}).sum()
        (grad,) = torch.autograd.grad(weight * score, images)
    return grad
