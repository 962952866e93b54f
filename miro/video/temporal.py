"""Temporal consistency: carry the last output frame along the motion, and measure flicker.

Stylizing (or dreaming) each frame alone flickers: small changes between input frames move the
network's output more than the picture moved. ``TemporalBlend`` warps the previous output frame
along the optical flow from the current input frame to the previous one and mixes it into the
current output with ``weight`` where the flow is reliable (Ruder, Dosovitskiy and Brox,
"Artistic Style Transfer for Videos", GCPR 2016, carry the warped frame the same way into
their optimization's start and loss). ``warping_error`` is the flicker measure of Lai et al.,
"Learning Blind Video Temporal Consistency" (ECCV 2018).

Example::

    temporal = TemporalBlend(TemporalSettings(weight=0.7))
    smooth = [temporal.keep(frame, temporal.blend(frame, out)) for frame, out in zip(frames, outs)]
    warping_error(frames, smooth) < warping_error(frames, outs)   # True on a pan
"""

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from miro.video.errors import VideoSettingsError
from miro.video.flow import FlowEstimator, Motion, check_preset, estimate_motion, warp


@dataclass(frozen=True)
class TemporalSettings:
    """``weight``: the warped previous output's share where the flow is reliable, in [0, 1)
    (0: every frame alone); ``flow``: the DIS preset (ultrafast, fast, medium)."""

    weight: float = 0.7
    flow: str = "medium"

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not (0 <= self.weight < 1):
            raise VideoSettingsError(
                f"temporal.weight must be at least 0 and below 1 (0: each frame alone), "
                f"got {self.weight!r}"
            )
        check_preset(self.flow)


def blend_warped(
    current: torch.Tensor, previous: torch.Tensor, motion: Motion, weight: float
) -> torch.Tensor:
    """``weight · warp(previous) + (1 − weight) · current`` where ``motion`` is reliable,
    ``current`` elsewhere; ``(3, H, W)`` or ``(B, 3, H, W)``, on ``current``'s device."""
    carried = warp(previous, motion.flow.to(current.device))
    mixed = torch.lerp(current, carried, weight)
    return torch.where(motion.reliable.to(current.device), mixed, current)


class TemporalBlend:
    """The temporal state of one output stream: ``blend`` mixes the last kept output, warped
    to the current frame, into a new picture; ``keep`` remembers a frame's final output.

    Stylizing blends the network's output (``keep(frame, blend(frame, stylized))``); dreaming
    blends the frame itself into the start of its dream (``keep(frame, dream(blend(frame,
    frame)))``). ``weight=0`` returns pictures unchanged and computes no flow.
    """

    def __init__(self, settings: TemporalSettings | None = None) -> None:
        self.settings = settings or TemporalSettings()
        self.flow = FlowEstimator(self.settings.flow)
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None

    def blend(self, frame: torch.Tensor, picture: torch.Tensor) -> torch.Tensor:
        """``picture`` (``(3, H, W)``, or ``(L, 3, H, W)``: one per look of a frame, sharing
        its flow) with the last kept output carried in along the motion from the last frame to
        the input ``frame`` ``(3, H, W)``."""
        if self.settings.weight == 0 or self.previous is None:
            return picture
        motion = estimate_motion(self.previous[0], frame, self.flow)
        return blend_warped(picture, self.previous[1], motion, self.settings.weight)

    def keep(self, frame: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """Remember ``output`` as ``frame``'s final output (what the next frame carries);
        returns it."""
        self.previous = (frame, output)
        return output


def warping_error(
    frames: Iterable[torch.Tensor], outputs: Iterable[torch.Tensor], flow: str = "medium"
) -> float:
    """Lai et al. (2018)'s warping error of a video's ``outputs`` given its input ``frames``
    (each ``(3, H, W)`` in [0, 1], in order): the mean over consecutive pairs of
    ``Σ M ‖O_t − warp(O_{t−1})‖² / Σ M``, the squared colour distance averaged over the
    pixels ``M`` where the flow, computed on the input frames, is reliable. 0 for a clip of one
    frame; lower is steadier."""
    estimator, errors, previous = FlowEstimator(flow), [], None
    for frame, output in zip(frames, outputs, strict=True):
        if previous is not None:
            motion = estimate_motion(previous[0], frame, estimator)
            carried = warp(previous[1], motion.flow)
            squared = (output - carried).square().sum(0)
            errors.append(squared[motion.reliable].mean().item() if motion.reliable.any() else 0)
        previous = (frame, output)
    return sum(errors) / len(errors) if errors else 0.0
