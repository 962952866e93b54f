"""Fast feed-forward style transfer for N styles in one network.

Dumoulin, Shlens and Kudlur, "A Learned Representation for Artistic Style", ICLR 2017, on the
perceptual-loss transformer of Johnson et al. (2016): every convolution is followed by a
conditional instance norm whose scale and shift come from a per-style table, so a style costs
only ``2 × channels`` numbers per norm and styles mix by mixing those rows.

=================  ==========================================
layer              output channels (``width`` = 32 default)
=================  ==========================================
conv 9×9           width
conv 3×3 /2        2 × width
conv 3×3 /2        4 × width
5 residual blocks  4 × width (two 3×3 convs, ReLU after the first)
nearest ×2, 3×3    2 × width
nearest ×2, 3×3    width
conv 9×9, sigmoid  3
=================  ==========================================

The real-time thin stylizer (``conf/model/stylizer_thin.yaml``) is ``width=8, separable=True``:
its residual convolutions are depthwise-separable (Howard et al., "MobileNets", 2017). It has
37 K parameters for 9 styles (the default 1.7 M); ``benchmarks/thin_stylizer.py`` times it under
onnxruntime against a peer ONNX model and compares its style loss with the default's.

Example::

    stylizer = Stylizer(num_styles=9)
    thin = Stylizer(num_styles=9, width=8, separable=True)
    out = stylizer(images, torch.tensor([3, 3]))          # (2, 3, H, W) in [0, 1], style 3
    mixed = stylizer(images, torch.tensor([[0.7, 0.3] + [0.0] * 7] * 2))  # 70 % style 0

Without autograd on the CPU, ``forward`` runs ``Stylizer.infer`` image by image: the same
function (within ~1e-5), in about half the time of the layer-by-layer path or less (see
``benchmarks/RESULTS.md``): channels-last convolutions; each norm's γ/β mixed once and applied
in place in the same pass as the normalization; ReLU, sigmoid and the residual sum in place; each
nearest ×2 + 3×3 convolution folded into four 2×2 convolutions on the small image; the 9×9 output
convolution to 3 channels split into nine 1×9 rows. Training, tracing and export take the
layer-by-layer path.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# Which output pixels of a nearest ×2 upsample + 3×3 conv read which of the small image's rows:
# output row 2i + a reads upsampled rows 2i + a - 1 .. 2i + a + 1 = small rows (i - 1, i, i) for
# a = 0 and (i, i, i + 1) for a = 1, so kernel rows fold as [k0, k1 + k2] and [k0 + k1, k2].
UPSAMPLE_FOLD = torch.tensor(
    [[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]
)  # [a, tap, kernel row]


def exporting() -> bool:
    """Whether the model is being traced for TorchScript or ONNX: the plain layers then, which
    those formats know (the faster equivalents below use strides and batch norm tricks)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def fast_inference(images: torch.Tensor) -> bool:
    """Whether ``Stylizer.forward`` takes ``Stylizer.infer``: on the CPU (where it was measured),
    without autograd, and not while exporting."""
    return images.device.type == "cpu" and not torch.is_grad_enabled() and not exporting()


def style_weights(styles: torch.Tensor, num_styles: int) -> torch.Tensor:
    """Style ids ``(B,)`` → one-hot weights ``(B, num_styles)``; weights pass through as float."""
    if styles.dtype in (torch.int32, torch.int64):
        return F.one_hot(styles, num_styles).float()
    return styles.float()


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm whose affine (γ, β) is a weighted sum of per-style table rows.

    γ starts at 1 and β at 0, so every style starts as plain instance norm.
    """

    def __init__(self, channels: int, num_styles: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False, eps=eps)
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        activation_: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``x`` ``(B, C, H, W)``, ``weights`` ``(B, num_styles)`` → ``(B, C, H, W)``;
        ``activation_``, an in-place activation (``torch.relu_``), is applied to the result."""
        gamma, beta = weights @ self.gamma, weights @ self.beta
        if exporting():
            out = self.norm(x) * gamma[:, :, None, None] + beta[:, :, None, None]
            return out if activation_ is None else activation_(out)
        # Instance norm is batch norm of the (1, B·C) view, whose affine takes one (γ, β) per
        # image and channel: normalization and affine in one pass.
        batch, channels = x.shape[:2]
        gamma, beta = gamma.expand(batch, -1).flatten(), beta.expand(batch, -1).flatten()
        flat = x.reshape(1, batch * channels, *x.shape[2:])
        out = F.batch_norm(flat, None, None, gamma, beta, True, 0.0, self.norm.eps)
        if activation_ is not None:  # on the result itself: on its (B, C) view, autograd would
            activation_(out)  # copy the whole gradient back through the view
        return out.view_as(x)

    def normalize_(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        mean: torch.Tensor | None = None,
        var: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` for one image ``x`` ``(1, C, H, W)``, in place, without autograd.

        Normalizes by ``x``'s own statistics, or by ``mean`` and ``var`` ``(C,)`` when given;
        ``weights`` ``(1, num_styles)``. Returns the ``(mean, var)`` used, each ``(C,)``.
        """
        gamma, beta = (weights @ self.gamma)[0], (weights @ self.beta)[0]
        own = mean is None
        save_mean, save_invstd = x.new_empty(0), x.new_empty(0)
        # Batch norm of a batch of one is instance norm; writing into x saves a pass and a fresh
        # buffer (page faults cost as much as the arithmetic for the large early layers).
        torch.ops.aten.native_batch_norm.out(
            x,
            gamma,
            beta,
            mean,
            var,
            own,
            0.0,
            self.norm.eps,
            out=x,
            save_mean=save_mean,
            save_invstd=save_invstd,
        )
        if own:
            return save_mean, save_invstd.pow(-2) - self.norm.eps
        return mean, var


# How ``Stylizer.infer`` normalizes: ``norm(module, x, weights)`` normalizes ``x`` in place.
NormStep = Callable[[ConditionalInstanceNorm2d, torch.Tensor, torch.Tensor], object]
IN_PLACE = {nn.ReLU: torch.relu_, nn.Sigmoid: torch.sigmoid_, nn.Identity: lambda x: x}


def own_statistics(norm: ConditionalInstanceNorm2d, x: torch.Tensor, weights: torch.Tensor):
    norm.normalize_(x, weights)


def upsample_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(reflection_pad(nearest_upsample_2x(x)))`` for a 3×3 ``conv``, computed on ``x``.

    Each of the four output phases (row, column parity) is a 2×2 convolution of ``x`` with
    the kernel folded by ``UPSAMPLE_FOLD``: 16 instead of 36 multiply-adds per input pixel and
    output channel, and no 4× larger upsampled image. Reflecting the upsampled image by one
    pixel repeats its edge, which is the small image's edge, so ``x`` is padded by replication.
    The phases are interleaved in ``x``'s layout: written in place into a channels-last result
    (inference), or by ``pixel_shuffle`` (training, NCHW): phase (a, b) is read one row and
    column further on when a or b is 1, so shuffled into slot (1 − a, 1 − b) every phase lands
    one pixel down and right of its place, and one crop aligns them all. The gradient is then
    one copy, not one full-size buffer per phase.
    """
    out_channels, height, width = conv.out_channels, x.shape[-2], x.shape[-1]
    fold = UPSAMPLE_FOLD.to(conv.weight)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    if x.is_contiguous(memory_format=torch.channels_last):  # interleaved in place, NHWC
        kernels = torch.einsum("atk,oikl,bul->aboitu", fold, conv.weight, fold).flatten(0, 2)
        phases = F.conv2d(padded, kernels, conv.bias.repeat(4))
        phases = phases.permute(0, 2, 3, 1).unflatten(3, (2, 2, out_channels))
        out = phases.new_empty(x.shape[0], height, 2, width, 2, out_channels)
        for a in (0, 1):
            for b in (0, 1):
                out[:, :, a, :, b] = phases[:, a : a + height, b : b + width, a, b]
        return out.flatten(1, 2).flatten(2, 3).permute(0, 3, 1, 2)
    flipped = fold.flip(0)  # slot a' holds phase 1 − a'
    kernels = torch.einsum("atk,oikl,bul->oabitu", flipped, conv.weight, flipped).flatten(0, 2)
    phases = F.conv2d(padded, kernels, conv.bias.repeat_interleave(4))
    # The crop as one negative pad: its gradient is one padded copy, where two slices' are two.
    return F.pad(F.pixel_shuffle(phases, 2), (-1, -1, -1, -1))  # NCHW


def narrow_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(reflection_pad(x))`` for a stride-1 k×k ``conv`` to few channels (the output).

    A CPU convolution computes 8 or 16 output channels at once, so 3 waste most of it: instead
    one 1×k convolution makes ``k · out_channels`` channels, one per kernel row, and the rows are
    summed with their vertical shifts.
    """
    out_channels, in_channels, size, _ = conv.weight.shape
    rows = conv.weight.permute(2, 0, 1, 3).reshape(size * out_channels, in_channels, 1, size)
    pad = size // 2
    by_row = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), rows).permute(0, 2, 3, 1)
    # A view whose r-th slice is kernel row r's channels shifted up by r rows: one sum adds them.
    batch, height, width, _ = by_row.shape
    strides = by_row.stride()
    shifted = by_row.as_strided(
        (size, batch, height - 2 * pad, width, out_channels),
        (strides[1] + out_channels * strides[3], *strides),
        by_row.storage_offset(),
    )
    # Dense NCHW (3 channels: a small copy). Left as the NHWC view, a batch of one reaches the
    # conditional norm without a reshaping copy, and a dense NCHW gradient coming back (a
    # mean's) then gave the wrong gradient for the rows.
    return (shifted.sum(0) + conv.bias).permute(0, 3, 1, 2).contiguous()


class SeparableConv2d(nn.Sequential):
    """A depthwise k×k convolution, then a pointwise 1×1 one: ``k² + out_channels`` instead of
    ``k² · out_channels`` multiply-adds per input channel and pixel."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size, groups=in_channels),
            nn.Conv2d(in_channels, out_channels, 1),
        )


class ConvBlock(nn.Module):
    """[nearest upsample] → reflection pad → conv → conditional instance norm → activation.

    ``separable``: the conv is a ``SeparableConv2d`` (stride 1, no upsampling only).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_styles: int,
        stride: int = 1,
        upsample: int = 1,
        activation: nn.Module | None = None,
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        if separable:
            self.conv = SeparableConv2d(in_channels, out_channels, kernel_size)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride)
        self.norm = ConditionalInstanceNorm2d(out_channels, num_styles)
        self.activation = nn.ReLU() if activation is None else activation

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # No backward reads the norm's output (ReLU's and sigmoid's read their own): a known
        # activation runs in place on it, one full-size buffer fewer per layer.
        in_place = IN_PLACE.get(type(self.activation))
        if in_place is None:
            return self.activation(self.norm(self.convolve(x), weights))
        return self.norm(self.convolve(x), weights, in_place)

    def infer(self, x: torch.Tensor, weights: torch.Tensor, norm: NormStep) -> torch.Tensor:
        """``forward`` for one image, without autograd (see ``Stylizer.infer``)."""
        y = self.convolve(x)
        norm(self.norm, y, weights)
        return IN_PLACE.get(type(self.activation), self.activation)(y)

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        """``conv(pad([upsample](x)))``, by a faster equivalent where one applies (not when
        exporting): ``upsample_conv`` after a nearest ×2, ``narrow_conv`` to few channels."""
        plain = isinstance(self.conv, nn.Conv2d) and self.conv.stride == (1, 1)
        if plain and not exporting():
            if self.upsample == 2 and self.conv.kernel_size == (3, 3):
                return upsample_conv(self.conv, x)
            if self.upsample == 1 and self.conv.out_channels < 8:
                return narrow_conv(self.conv, x)
        if self.upsample > 1:  # nearest + conv instead of a transposed conv: no checkerboards
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.conv(self.pad(x))


class ResidualBlock(nn.Module):
    """Two 3×3 conv blocks, ReLU after the first only, plus the input."""

    def __init__(self, channels: int, num_styles: int, separable: bool = False) -> None:
        super().__init__()
        self.first = ConvBlock(channels, channels, 3, num_styles, separable=separable)
        self.second = ConvBlock(
            channels, channels, 3, num_styles, activation=nn.Identity(), separable=separable
        )

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return x + self.second(self.first(x, weights), weights)

    def infer(self, x: torch.Tensor, weights: torch.Tensor, norm: NormStep) -> torch.Tensor:
        return self.second.infer(self.first.infer(x, weights, norm), weights, norm).add_(x)


class Stylizer(nn.Module):
    """The N-style transformer network; see the module docstring for its layers.

    Args:
        num_styles: rows of every conditional-norm table.
        width: channels of the first layer (the paper's 32); thinner is faster.
        num_residual: residual blocks at the bottleneck.
        separable: the residual blocks' convolutions are depthwise-separable
            (``SeparableConv2d``): ~8× fewer multiply-adds at the bottleneck.
    """

    def __init__(
        self, num_styles: int, width: int = 32, num_residual: int = 5, separable: bool = False
    ) -> None:
        super().__init__()
        self.num_styles = num_styles
        w = width
        self.blocks = nn.ModuleList(
            [
                ConvBlock(3, w, 9, num_styles),
                ConvBlock(w, 2 * w, 3, num_styles, stride=2),
                ConvBlock(2 * w, 4 * w, 3, num_styles, stride=2),
                *(ResidualBlock(4 * w, num_styles, separable) for _ in range(num_residual)),
                ConvBlock(4 * w, 2 * w, 3, num_styles, upsample=2),
                ConvBlock(2 * w, w, 3, num_styles, upsample=2),
                ConvBlock(w, 3, 9, num_styles, activation=nn.Sigmoid()),
            ]
        )

    def forward(self, images: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1] (H, W multiples of 4) and style ids ``(B,)`` or
        mixing weights ``(B, num_styles)`` → stylized images ``(B, 3, H, W)`` in [0, 1]."""
        weights = style_weights(styles, self.num_styles)
        if fast_inference(images):
            rows = zip(images.split(1), weights.expand(len(images), -1).split(1), strict=True)
            outputs = [self.infer(image, row) for image, row in rows]
            return outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        x = images
        for block in self.blocks:
            x = block(x, weights)
        return x

    @torch.no_grad()
    def infer(
        self, image: torch.Tensor, weights: torch.Tensor, norm: NormStep = own_statistics
    ) -> torch.Tensor:
        """``forward`` for one image without autograd, faster (see the module docstring).

        ``image`` ``(1, 3, H, W)`` in [0, 1], ``weights`` ``(1, num_styles)`` → ``(1, 3, H, W)``.
        ``norm(module, x, weights)`` normalizes each conditional norm's input in place, in
        layer order; by default by its own statistics (``miro.style.tiling`` freezes them).
        """
        x = image
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        for block in self.blocks:
            x = block.infer(x, weights, norm)
        return x.contiguous()

    def norm_parameters(self) -> list[nn.Parameter]:
        """The per-style γ and β tables: all a new style fine-tunes."""
        return [
            p
            for m in self.modules()
            if isinstance(m, ConditionalInstanceNorm2d)
            for p in (m.gamma, m.beta)
        ]


def add_styles(state: dict[str, torch.Tensor], new_styles: int) -> dict[str, torch.Tensor]:
    """A stylizer state dict with ``new_styles`` more rows in every γ/β table, each new row the
    mean of the old ones (a new style starts from the average style)."""
    grown = dict(state)
    for key, table in state.items():
        if key.endswith((".gamma", ".beta")):
            grown[key] = torch.cat([table, table.mean(0, keepdim=True).expand(new_styles, -1)])
    return grown
