"""Zoom dreams: each frame dreams on the previous one, zoomed in (and turned) a little.

Google's DeepDream notebook ends with it (dream a frame, zoom into it by 5 %, dream again);
gordicaleksa/pytorch-deepdream calls it the "ouroboros" video (zoom about 1.04 and a small
rotation per frame). The geometric change happens about the image centre with bilinear
sampling, reflecting the image at its borders where a rotation leaves corners empty.

Example::

    frames = zoom_frames(model, photo, layer("inception4c"), frames=30, zoom=1.05, degrees=1)
    write_video(frames, "zoom.mp4", fps=12)
"""

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from miro.deepdream.models import DreamModel
from miro.deepdream.objectives import Objective
from miro.deepdream.octaves import DreamSettings, as_generator, dream
from miro.deepdream.progress import DreamProgress


def zoom_rotate(images: torch.Tensor, zoom: float = 1.05, degrees: float = 0.0) -> torch.Tensor:
    """``images`` ``(B, C, H, W)`` magnified ``zoom`` times and turned ``degrees``
    (counter-clockwise) about their centre; same size, values within the input's range."""
    if zoom <= 0:
        raise ValueError(f"zoom={zoom} must be positive, e.g. 1.05")
    angle = math.radians(degrees)
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    height, width = images.shape[-2:]
    # affine_grid works in [-1, 1] coordinates on each axis: correct for the aspect ratio.
    theta = torch.tensor(
        [[cos, -sin * height / width, 0.0], [sin * width / height, cos, 0.0]],
        dtype=images.dtype,
        device=images.device,
    )
    grid = F.affine_grid(theta.expand(len(images), 2, 3), list(images.shape), align_corners=False)
    return F.grid_sample(
        images, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )


def zoom_frames(
    model: DreamModel,
    images: torch.Tensor,
    objective: Objective | None = None,
    settings: DreamSettings | None = None,
    frames: int = 30,
    zoom: float = 1.05,
    degrees: float = 0.0,
    seed: int | torch.Generator = 0,
    progress: Callable[[DreamProgress], None] | bool | None = None,
) -> Iterator[torch.Tensor]:
    """Yield ``frames`` dreamed frames ``(B, 3, H, W)`` in [0, 1]: the first is ``dream`` of
    ``images``, each next one the dream of the previous frame after ``zoom_rotate(zoom,
    degrees)``. One generator drives every frame's jitter, so a seed fixes the whole sequence.
    Frames are often dreamed with fewer octaves or steps than a still, e.g.
    ``DreamSettings(octaves=1, steps=5)``: each frame already carries the previous one's dream.
    """
    if frames < 1:
        raise ValueError(f"frames={frames} must be at least 1")
    generator = as_generator(seed)
    frame = images
    for index in range(frames):
        if index:
            frame = zoom_rotate(frame, zoom, degrees).clamp_(0, 1)
        frame = dream(model, frame, objective, settings, generator, progress)
        yield frame
