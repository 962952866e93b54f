"""Dreaming a video: each frame's dream starts from the previous frame's dream, carried along
the motion, so the dream follows the picture instead of flickering.

gordicaleksa/pytorch-deepdream blends each new frame with the last dream where it lies on the
screen; here the last dream is first warped along the optical flow from the new frame to the
last one and blended in only where that flow is reliable (``miro.video.TemporalBlend``), and
the blend is dreamed on for a few steps. ``temporal.weight=0`` dreams every frame alone.

Example::

    frames = read_frames("clip.mp4", max_size=512)
    dreams = dream_video(model, frames, layer("inception4c"), DreamSettings(octaves=2, steps=5))
    write_video(dreams, "clip_dream.mp4", fps=25)
"""

from collections.abc import Iterable, Iterator

import torch

from miro.deepdream.models import DreamModel
from miro.deepdream.objectives import Objective
from miro.deepdream.octaves import DreamSettings, as_generator, dream
from miro.video.temporal import TemporalBlend, TemporalSettings


def dream_video(
    model: DreamModel,
    frames: Iterable[torch.Tensor],
    objective: Objective | None = None,
    settings: DreamSettings | None = None,
    temporal: TemporalSettings | None = None,
    seed: int | torch.Generator = 0,
) -> Iterator[torch.Tensor]:
    """Yield the dream ``(3, H, W)`` in [0, 1] of each of ``frames`` (``(3, H, W)`` in
    [0, 1], in order), on the model's device. Each dream starts from the frame blended with
    the last dream as ``temporal`` says; one generator drives every frame's jitter, so a seed
    fixes the whole clip."""
    device = next(model.buffers()).device
    generator, state = as_generator(seed), TemporalBlend(temporal)
    for frame in frames:
        frame = frame.to(device)
        start = state.blend(frame, frame)
        yield state.keep(frame, dream(model, start[None], objective, settings, generator)[0])
