"""The input gradient of a frozen stride-2 stem convolution, computed as one stride-1 one.

A dream's gradient flows back through the network's first convolution into 3 colour channels.
For GoogLeNet's stem (7 × 7, stride 2, 3 → 64 channels) the CPU's backward convolution writes
those 3 channels at a fraction of its usual rate: 60 ms at 512 px on one thread where the
forward takes 13, a fifth of a whole GoogLeNet dream step. Each output parity (row a, column b)
of that gradient is a correlation of the stem's output gradient with a sub-kernel of taps, so
all four are one stride-1 convolution to ``4 × in_channels`` channels, interleaved by
``pixel_shuffle``: the same sums (up to float rounding), in 26 ms.

Example::

    net.conv1.conv = StemConv2d(net.conv1.conv)   # same outputs, faster input gradient
"""

import torch
import torch.nn.functional as F
from torch import nn


def tap_range(kernel: int, padding: int, parity: int) -> range:
    """The offsets ``d = i - p`` by which input row ``2i + parity`` reads output row ``p``
    (through kernel row ``u = 2d + parity + padding``)."""
    low = -((parity + padding) // 2)  # ceil((−parity − padding) / 2)
    high = (kernel - 1 - parity - padding) // 2
    return range(low, high + 1)


def phase_kernel(weight: torch.Tensor, padding: int) -> tuple[torch.Tensor, int, int]:
    """The stride-1 kernel ``(4 · in, out, T, T)`` whose output channel ``c · 4 + a · 2 + b`` is
    the input gradient at parities (a, b) of colour c; and the padding before and after."""
    out_channels, in_channels, kernel, _ = weight.shape
    ranges = [tap_range(kernel, padding, parity) for parity in (0, 1)]
    before = max(r.stop - 1 for r in ranges)  # the largest d: the output row furthest up
    after = max(-r.start for r in ranges)
    taps = before + after + 1
    phases = weight.new_zeros(in_channels, 2, 2, out_channels, taps, taps)
    for a in (0, 1):
        for b in (0, 1):
            for dy in ranges[a]:
                for dx in ranges[b]:
                    u, v = 2 * dy + a + padding, 2 * dx + b + padding
                    phases[:, a, b, :, before - dy, before - dx] = weight[:, :, u, v].T
    return phases.flatten(0, 2), before, after


class _StemGradient(torch.autograd.Function):
    """``conv2d(images, weight, bias, stride 2)``, differentiable in ``images`` only."""

    @staticmethod
    def forward(ctx, images, weight, bias, padding, phases, pads):
        ctx.save_for_backward(phases)
        ctx.shape, ctx.dtype, ctx.pads = images.shape[-2:], images.dtype, pads
        return F.conv2d(images, weight, bias, stride=2, padding=padding)

    @staticmethod
    def backward(ctx, grad):
        (phases,) = ctx.saved_tensors
        before, after = ctx.pads
        # Padded evenly by the convolution itself (no padded copy of the gradient): the rows a
        # larger ``after`` adds on top are cropped after the shuffle.
        pad = max(before, after)
        by_phase = F.conv2d(grad, phases.to(grad.dtype), padding=pad)
        height, width = ctx.shape
        skip = 2 * (pad - before)
        images = F.pixel_shuffle(by_phase, 2)[..., skip : skip + height, skip : skip + width]
        return images.to(ctx.dtype), None, None, None, None, None


class StemConv2d(nn.Conv2d):
    """``conv`` (a square stride-2 convolution, its parameters shared), whose input gradient is
    one stride-1 convolution while its weights are frozen (a dream's network); with trainable
    weights it runs as ``conv`` does."""

    def __init__(self, conv: nn.Conv2d) -> None:
        kernel, padding = conv.kernel_size[0], conv.padding[0]
        square = conv.kernel_size == (kernel,) * 2 and conv.padding == (padding,) * 2
        if not square or conv.stride != (2, 2) or conv.dilation != (1, 1) or conv.groups != 1:
            raise ValueError(f"{conv} is not a square, undilated, ungrouped stride-2 convolution")
        if kernel > 2 * padding + 1 or conv.padding_mode != "zeros":
            raise ValueError(f"{conv} reads no output row for its last input rows")
        super().__init__(conv.in_channels, conv.out_channels, kernel, 2, padding, device="meta")
        self.weight, self.bias = conv.weight, conv.bias
        self._phases: tuple[tuple, torch.Tensor, tuple[int, int]] | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.weight.requires_grad or not torch.is_grad_enabled():
            return super().forward(images)
        phases, pads = self._phase_kernel()
        return _StemGradient.apply(images, self.weight, self.bias, self.padding, phases, pads)

    def _phase_kernel(self) -> tuple[torch.Tensor, tuple[int, int]]:
        """``phase_kernel`` of the weights, kept until they change (in place or replaced)."""
        weight = self.weight
        key = (weight.data_ptr(), weight._version, weight.device, weight.dtype)
        if self._phases is None or self._phases[0] != key:
            phases, before, after = phase_kernel(weight.detach(), self.padding[0])
            self._phases = (key, phases, (before, after))
        return self._phases[1], self._phases[2]
