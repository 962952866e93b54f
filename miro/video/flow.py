"""Optical flow between frames, warping along it, and where it can be trusted.

Flow is OpenCV's DIS (Kroeger et al., "Fast Optical Flow using Dense Inverse Search", ECCV
2016) on grey frames. A flow is an ``(H, W, 2)`` float tensor of ``(dx, dy)`` pixels from frame
``a`` to frame ``b``: ``a[y, x] ≈ b[y + dy, x + dx]``, so ``warp(b, flow)`` redraws ``b`` in
``a``'s place (backward warping). A pixel's flow is reliable where the flow back from where it
lands returns it home: the forward–backward check of Sundaram, Brox and Keutzer, "Dense Point
Trajectories by GPU-Accelerated Large Displacement Optical Flow" (ECCV 2010), with the
thresholds of Ruder, Dosovitskiy and Brox, "Artistic Style Transfer for Videos" (GCPR 2016).

Example::

    motion = estimate_motion(previous, current)          # frames (3, H, W) in [0, 1]
    carried = warp(previous_output, motion.flow)         # the last output, moved to now
    carried = torch.where(motion.reliable, carried, current_output)
"""

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from miro.video.errors import VideoSettingsError

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise VideoSettingsError(
            f"temporal.flow={preset!r} is no DIS preset; choose one of {', '.join(PRESETS)}"
        )
    return preset


def grey(frame: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in [0, 1] → ``(H, W)`` uint8 luma, what DIS reads."""
    rgb = frame.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu()
    return cv2.cvtColor(np.ascontiguousarray(rgb.numpy()), cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """DIS optical flow at a ``preset`` (ultrafast, fast, medium): call it with frames ``a``
    and ``b``, ``(3, H, W)`` in [0, 1] on any device, for the ``(H, W, 2)`` flow from ``a`` to
    ``b`` on the CPU."""

    def __init__(self, preset: str = "medium") -> None:
        self.dis = cv2.DISOpticalFlow_create(PRESETS[check_preset(preset)])

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.dis.calc(grey(a), grey(b), None))


def sample_grid(flow: torch.Tensor) -> torch.Tensor:
    """``(B, H, W, 2)`` flow → the ``grid_sample`` grid of the points ``x + flow(x)``."""
    height, width = flow.shape[1:3]
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=flow.dtype, device=flow.device),
        torch.arange(width, dtype=flow.dtype, device=flow.device),
        indexing="ij",
    )
    x = (xs + flow[..., 0]) * (2 / max(width - 1, 1)) - 1
    y = (ys + flow[..., 1]) * (2 / max(height - 1, 1)) - 1
    return torch.stack([x, y], dim=-1)


def warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``images`` ``(B, C, H, W)`` or ``(C, H, W)`` sampled (bilinearly) at ``x + flow(x)``;
    ``flow`` ``(H, W, 2)`` or ``(B, H, W, 2)``. Points that land outside take the border's
    value; ``reliable`` leaves them out."""
    single = images.dim() == 3
    batch = images[None] if single else images
    flow = flow.to(batch)
    flow = (
        flow.expand(len(batch), -1, -1, -1)
        if flow.dim() == 4
        else flow.expand(len(batch), *flow.shape)
    )
    warped = F.grid_sample(
        batch, sample_grid(flow), mode="bilinear", padding_mode="border", align_corners=True
    )
    return warped[0] if single else warped


def reliable(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` bool: where the ``forward`` flow (a → b) is trusted, given the ``backward``
    one (b → a), both ``(H, W, 2)``.

    A pixel fails when it lands outside ``b`` or when, with ``w_b`` the backward flow where it
    lands, ``|w_f + w_b|² > 0.01 (|w_f|² + |w_b|²) + 0.5`` (Sundaram et al. 2010; Ruder et al.
    2016): what was hidden in ``b`` (occluded) or only appears in ``a`` (disoccluded).
    """
    landed = warp(backward.permute(2, 0, 1), forward).permute(1, 2, 0)
    mismatch = (forward + landed).square().sum(-1)
    allowed = 0.01 * (forward.square().sum(-1) + landed.square().sum(-1)) + 0.5
    grid = sample_grid(forward[None])[0]
    inside = (grid.abs() <= 1).all(-1)
    return (mismatch <= allowed) & inside


@dataclass(frozen=True)
class Motion:
    """How frame ``current`` came from frame ``previous``: ``flow`` ``(H, W, 2)`` from
    ``current`` to ``previous`` (so ``warp(previous_like, flow)`` lands on ``current``) and
    ``reliable`` ``(H, W)`` bool, both on the CPU."""

    flow: torch.Tensor
    reliable: torch.Tensor


def estimate_motion(
    previous: torch.Tensor, current: torch.Tensor, flow: FlowEstimator | None = None
) -> Motion:
    """The ``Motion`` from ``previous`` to ``current`` (``(3, H, W)`` in [0, 1]): both flows
    by ``flow`` (DIS medium by default) and their forward–backward check."""
    flow = flow or FlowEstimator()
    forward, backward = flow(current, previous), flow(previous, current)
    return Motion(forward, reliable(forward, backward))
