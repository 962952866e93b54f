"""pytorch/examples' fast_neural_style (Johnson et al. 2016), re-implemented in our own words
from its public code so benchmarks can time it in the same process as ours.

- ``TransformerNet``: 9 × 9 conv to 32, 3 × 3 stride-2 convs to 64 and 128, five residual
  blocks, two nearest ×2 + 3 × 3 convs, 9 × 9 conv to 3; reflection padding, affine instance
  norm after every conv but the last, ReLU; unbounded output on the [0, 255] scale; contiguous
  NCHW tensors, out-of-place ops.
- The training step: images on the [0, 255] scale; the stylized and the content batch are each
  divided by 255 and ImageNet-normalized, then both run through VGG-16 to relu4_3 (the four
  slices of ``peer_deepdream.PeerVGG16``, which cuts VGG-16 as this repository does); content
  loss = MSE of relu2_2 × 1e5; style loss = the MSE of each of the four layers' Grams
  FᵀF / (C·H·W) against the style image's, summed, × 1e10; Adam 1e-3; both losses read back
  with ``.item()`` every step for its log.
"""

import torch
import torch.nn.functional as F
from peer_deepdream import PeerVGG16
from torch import nn

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
CONTENT_WEIGHT, STYLE_WEIGHT = 1e5, 1e10


class PaddedConv(nn.Sequential):
    """[nearest upsampling], reflection padding by half the kernel, then a convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride=1, upsample=1):
        layers = [nn.Upsample(scale_factor=upsample, mode="nearest")] if upsample > 1 else []
        layers.append(nn.ReflectionPad2d(kernel // 2))
        layers.append(nn.Conv2d(in_channels, out_channels, kernel, stride))
        super().__init__(*layers)


def normed(conv: PaddedConv, relu: bool = True) -> nn.Sequential:
    """``conv``, affine instance norm, [ReLU] (fresh tensors at each step, as in the peer)."""
    norm = nn.InstanceNorm2d(conv[-1].out_channels, affine=True)
    return nn.Sequential(conv, norm, nn.ReLU()) if relu else nn.Sequential(conv, norm)


class Residual(nn.Module):
    """conv → norm → ReLU → conv → norm, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            normed(PaddedConv(channels, channels, 3)),
            normed(PaddedConv(channels, channels, 3), relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(
            normed(PaddedConv(3, 32, 9)),
            normed(PaddedConv(32, 64, 3, stride=2)),
            normed(PaddedConv(64, 128, 3, stride=2)),
            *(Residual(128) for _ in range(5)),
            normed(PaddedConv(128, 64, 3, upsample=2)),
            normed(PaddedConv(64, 32, 3, upsample=2)),
            PaddedConv(32, 3, 9),
        )


def normalize_batch(batch: torch.Tensor) -> torch.Tensor:
    """[0, 255] → ImageNet-normalized, dividing ``batch`` by 255 in place first (as the peer)."""
    return (batch.div_(255.0) - MEAN) / STD


def gram(features: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = features.shape
    flat = features.view(batch, channels, height * width)
    return flat.bmm(flat.transpose(1, 2)) / (channels * height * width)


class PeerTraining:
    """The peer's training loop for one style image, a step at a time."""

    def __init__(self, style: torch.Tensor, vgg_features: nn.Sequential, batch_size: int) -> None:
        """``style`` ``(1, 3, H, W)`` on [0, 255]; ``vgg_features`` VGG-16's ``features``."""
        self.transformer = TransformerNet()
        self.optimizer = torch.optim.Adam(self.transformer.parameters(), 1e-3)
        self.vgg = PeerVGG16(vgg_features)
        with torch.no_grad():
            styles = normalize_batch(style.repeat(batch_size, 1, 1, 1))
            self.style_grams = [gram(f) for f in self.vgg(styles).values()]

    def step(self, images: torch.Tensor) -> tuple[float, float]:
        """One optimizer step on ``images`` ``(B, 3, H, W)`` on [0, 255] (left unchanged)."""
        self.optimizer.zero_grad()
        x = images.clone()
        y = normalize_batch(self.transformer(x))
        features_y, features_x = self.vgg(y), self.vgg(normalize_batch(x))
        content = CONTENT_WEIGHT * F.mse_loss(features_y["relu2_2"], features_x["relu2_2"])
        style = 0.0
        for features, target in zip(features_y.values(), self.style_grams, strict=True):
            style = style + F.mse_loss(gram(features), target[: len(images)])
        style = STYLE_WEIGHT * style
        (content + style).backward()
        self.optimizer.step()
        return content.item(), style.item()
