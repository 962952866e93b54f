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

Example::

    stylizer = Stylizer(num_styles=9)
    out = stylizer(images, torch.tensor([3, 3]))          # (2, 3, H, W) in [0, 1], style 3
    mixed = stylizer(images, torch.tensor([[0.7, 0.3] + [0.0] * 7] * 2))  # 70 % style 0
"""

import torch
import torch.nn.functional as F
from torch import nn


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

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C, H, W)``, ``weights`` ``(B, num_styles)`` → ``(B, C, H, W)``."""
        gamma = (weights @ self.gamma)[:, :, None, None]
        beta = (weights @ self.beta)[:, :, None, None]
        return self.norm(x) * gamma + beta


class ConvBlock(nn.Module):
    """[nearest upsample] → reflection pad → conv → conditional instance norm → activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_styles: int,
        stride: int = 1,
        upsample: int = 1,
        activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride)
        self.norm = ConditionalInstanceNorm2d(out_channels, num_styles)
        self.activation = nn.ReLU() if activation is None else activation

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.upsample > 1:  # nearest + conv instead of a transposed conv: no checkerboards
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.activation(self.norm(self.conv(self.pad(x)), weights))


class ResidualBlock(nn.Module):
    """Two 3×3 conv blocks, ReLU after the first only, plus the input."""

    def __init__(self, channels: int, num_styles: int) -> None:
        super().__init__()
        self.first = ConvBlock(channels, channels, 3, num_styles)
        self.second = ConvBlock(channels, channels, 3, num_styles, activation=nn.Identity())

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return x + self.second(self.first(x, weights), weights)


class Stylizer(nn.Module):
    """The N-style transformer network; see the module docstring for its layers.

    Args:
        num_styles: rows of every conditional-norm table.
        width: channels of the first layer (the paper's 32); thinner is faster.
        num_residual: residual blocks at the bottleneck.
    """

    def __init__(self, num_styles: int, width: int = 32, num_residual: int = 5) -> None:
        super().__init__()
        self.num_styles = num_styles
        w = width
        self.blocks = nn.ModuleList(
            [
                ConvBlock(3, w, 9, num_styles),
                ConvBlock(w, 2 * w, 3, num_styles, stride=2),
                ConvBlock(2 * w, 4 * w, 3, num_styles, stride=2),
                *(ResidualBlock(4 * w, num_styles) for _ in range(num_residual)),
                ConvBlock(4 * w, 2 * w, 3, num_styles, upsample=2),
                ConvBlock(2 * w, w, 3, num_styles, upsample=2),
                ConvBlock(w, 3, 9, num_styles, activation=nn.Sigmoid()),
            ]
        )

    def forward(self, images: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1] (H, W multiples of 4) and style ids ``(B,)`` or
        mixing weights ``(B, num_styles)`` → stylized images ``(B, 3, H, W)`` in [0, 1]."""
        weights = style_weights(styles, self.num_styles)
        x = images
        for block in self.blocks:
            x = block(x, weights)
        return x

    def norm_parameters(self) -> list[nn.Parameter]:
        """The per-style γ and β tables: all a new style fine-tunes."""
        return [
            p
            for m in self.modules()
            if isinstance(m, ConditionalInstanceNorm2d)
            for p in (m.gamma, m.beta)
        ]
