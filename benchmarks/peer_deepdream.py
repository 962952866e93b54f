"""The static-image DeepDream loop of gordicaleksa/pytorch-deepdream, re-implemented in our own
words from its public code so benchmarks can time it in the same process as ours.

What it does, as that repository does it:

- The network is cut at its last exposed layer: GoogLeNet runs through inception4e (its batch
  norms unfolded, ``transform_input`` always applied), VGG-16 through relu4_3 in four slices;
  all exposed layers are computed every step, whichever one the loss reads. Parameters are
  frozen; tensors contiguous float32 (NCHW).
- The image lives ImageNet-normalized. Pyramid levels run smallest first, at
  ``round(size · ratio^(level − levels + 1))``; each level resizes the whole image (bilinear).
- Each step: roll by a random shift in ``[-32, 32]`` per axis, forward, loss = the mean of the
  layers' mean squared activations, backward; smooth the gradient with a cascade of three
  9 × 9 Gaussians (σ · 0.5, 1, 2, σ = 2 · (step + 1) / steps + 0.5, reflect padding),
  standardize it (minus its mean, over its standard deviation), step by 0.09, clamp to the
  normalized image range, roll back.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import GoogLeNet

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
LOWER, UPPER = -MEAN / STD, (1 - MEAN) / STD
BLOCKS = ("inception3a", "inception3b", "maxpool3", "inception4a", "inception4b")
BLOCKS += ("inception4c", "inception4d", "inception4e")


class PeerGoogLeNet(nn.Module):
    """torchvision GoogLeNet through inception4e; returns inception3b, 4c, 4d, 4e by name."""

    layer_names = ("inception3b", "inception4c", "inception4d", "inception4e")

    def __init__(self, net: GoogLeNet) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        net = self.net
        x = x * (STD / 0.5) + (MEAN - 0.5) / 0.5  # transform_input, on normalized input
        x = net.maxpool2(net.conv3(net.conv2(net.maxpool1(net.conv1(x)))))
        taps = {}
        for name in BLOCKS:
            x = getattr(net, name)(x)
            taps[name] = x
        return {name: taps[name] for name in self.layer_names}


class PeerVGG16(nn.Module):
    """VGG-16 ``features`` through relu4_3 in four slices; returns relu1_2 … relu4_3."""

    layer_names = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    cuts = (4, 9, 16, 23)

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        bounds = zip((0, *self.cuts[:-1]), self.cuts, strict=True)
        self.slices = nn.ModuleList(features[start:stop] for start, stop in bounds)
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        taps = {}
        for name, part in zip(self.layer_names, self.slices, strict=True):
            x = part(x)
            taps[name] = x
        return taps


def gaussian_kernels(sigma: float, size: int = 9) -> list[torch.Tensor]:
    """The cascade's three normalized ``size`` × ``size`` Gaussians (σ · 0.5, 1, 2), each as a
    depthwise weight ``(3, 1, size, size)``."""
    grid = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    kernels = []
    for factor in (0.5, 1.0, 2.0):
        std = factor * sigma
        line = torch.exp(-(grid**2) / (2 * std**2)) / (std * math.sqrt(2 * math.pi))
        kernel = line[:, None] * line[None, :]
        kernels.append((kernel / kernel.sum()).expand(3, 1, size, size))
    return kernels


def smooth(grad: torch.Tensor, sigma: float, size: int = 9) -> torch.Tensor:
    padded = F.pad(grad, [size // 2] * 4, mode="reflect")
    blurred = [F.conv2d(padded, kernel, groups=3) for kernel in gaussian_kernels(sigma, size)]
    return sum(blurred) / 3


def gradient_ascent(net: nn.Module, layers: list[str], image: torch.Tensor, step: int, steps: int):
    """One step on ``image`` (normalized, requires grad), in place, as the peer takes it."""
    out = net(image)
    losses = [F.mse_loss(out[name], torch.zeros_like(out[name])) for name in layers]
    torch.stack(losses).mean().backward()
    grad = smooth(image.grad, 2.0 * (step + 1) / steps + 0.5)
    grad = (grad - grad.mean()) / grad.std()
    image.data += 0.09 * grad
    image.grad.zero_()
    image.data = torch.max(torch.min(image, UPPER), LOWER)


def peer_dream(
    net: nn.Module,
    layers: list[str],
    image: torch.Tensor,
    levels: int = 4,
    ratio: float = 1.4,
    steps: int = 10,
    shift: int = 32,
    seed: int = 0,
) -> torch.Tensor:
    """Dream ``image`` ``(1, 3, H, W)`` in [0, 1]; returns the dream in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    base = image.shape[-2:]
    normalized = (image - MEAN) / STD
    for level in range(levels):
        scale = ratio ** (level - levels + 1)
        size = [round(side * scale) for side in base]
        normalized = F.interpolate(normalized.detach(), size=size, mode="bilinear")
        for step in range(steps):
            dy, dx = torch.randint(-shift, shift + 1, (2,), generator=generator).tolist()
            with torch.no_grad():
                rolled = torch.roll(normalized, (dy, dx), (2, 3)).requires_grad_(True)
            gradient_ascent(net, layers, rolled, step, steps)
            with torch.no_grad():
                normalized = torch.roll(rolled, (-dy, -dx), (2, 3))
    return (normalized * STD + MEAN).clamp(0, 1)
