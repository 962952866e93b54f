"""Frozen VGG-16 feature taps: the loss network of perceptual losses.

Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
2015, used as in Johnson et al. (2016) and Dumoulin et al. (2017): torchvision's VGG-16
``features`` built only up to the deepest layer a loss reads (relu4_3 for the style losses,
23 of its 31 layers), frozen and always in eval mode. Inputs are ``[0, 1]`` RGB; the ImageNet
normalization torchvision's weights were trained with happens inside. It runs channels-last
(NHWC), which convolutions compute faster on CPUs and on GPUs' tensor cores; its taps are
channels-last tensors.

Example::

    vgg = VGG16Features(["relu2_2", "relu3_3"], weights="IMAGENET1K_V1")
    taps = vgg(images)                     # {"relu2_2": (B, 128, H/2, W/2), "relu3_3": ...}
    content = vgg(images, ["relu2_2"])     # stops after relu2_2
"""

import logging
from collections.abc import Sequence

import torch
from torch import nn

from miro.models.weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WeightsNotFoundError,
    load_pretrained_state_dict,
)

log = logging.getLogger(__name__)

# torchvision's VGG-16 configuration "D": channels of each 3×3 conv, "M" a 2×2 max pool.
CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def layer_names() -> list[str]:
    """Names of ``torchvision.models.vgg16().features``, index by index: conv1_1, relu1_1, ..."""
    names, block, conv = [], 1, 1
    for item in CONFIG:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


LAYER_NAMES = layer_names()


def build_features(depth: int) -> nn.Sequential:
    """The first ``depth`` layers of VGG-16 ``features``, indexed as torchvision's (so state-dict
    keys match), initialized as torchvision initializes an untrained VGG."""
    layers: list[nn.Module] = []
    channels = 3
    for item in CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            conv = nn.Conv2d(channels, item, 3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU(inplace=True)]
            channels = item
    return nn.Sequential(*layers[:depth])


class VGG16Features(nn.Module):
    """VGG-16 up to the deepest of ``layers``, returning those activations by name.

    Args:
        layers: names of the taps (``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3``, ... any of
            ``LAYER_NAMES``); nothing deeper than the deepest is built.
        weights: a torchvision ``VGG16_Weights`` name (``IMAGENET1K_V1``, or in full
            ``VGG16_Weights.IMAGENET1K_V1``), read from the ``TORCH_HOME`` cache; ``None`` keeps
            random weights (with a warning: losses on them do not measure style).
        weights_path: a local VGG-16 state dict (torchvision's keys); overrides ``weights``.
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        weights: str | None = "IMAGENET1K_V1",
        weights_path: str | None = None,
    ) -> None:
        super().__init__()
        unknown = sorted(set(layers) - set(LAYER_NAMES))
        if unknown or not layers:
            raise ValueError(
                f"unknown VGG-16 layers {unknown or layers}; choose from {LAYER_NAMES}"
            )
        self.layers = list(layers)
        self.features = build_features(max(LAYER_NAMES.index(name) for name in layers) + 1)
        if weights is None and weights_path is None:
            log.warning(
                "the VGG-16 loss network has random weights (model.loss_net.weights=null): "
                "training runs, but its losses do not measure style and the stylizations will "
                "not look like the paintings. Use model.loss_net.weights=IMAGENET1K_V1 or "
                "model.loss_net.weights_path=FILE for real training."
            )
        else:
            self._load(weights, weights_path)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.features.to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG16Features":
        """Always eval: a loss network never changes, whatever mode its owner is put in."""
        return super().train(False)

    def forward(
        self, images: torch.Tensor, layers: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Images ``(B, 3, H, W)`` in [0, 1] → ``{layer: (B, C, H', W')}`` for ``layers``
        (default: all taps), computing nothing past the deepest of them."""
        wanted = set(self.layers if layers is None else layers)
        if not wanted <= set(self.layers):
            raise ValueError(f"layers {sorted(wanted - set(self.layers))} are not taps here")
        last = max(LAYER_NAMES.index(name) for name in wanted)
        x = ((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        taps = {}
        for index in range(last + 1):
            x = self.features[index](x)
            if LAYER_NAMES[index] in wanted:
                taps[LAYER_NAMES[index]] = x
        return taps

    def _load(self, weights: str | None, weights_path: str | None) -> None:
        if weights is not None and "." not in weights:
            weights = f"VGG16_Weights.{weights}"
        try:
            state = load_pretrained_state_dict(weights, weights_path)
        except WeightsNotFoundError as err:
            raise WeightsNotFoundError(
                f"{err}. For the style loss network the keys are model.loss_net.weights_path="
                "FILE, or model.loss_net.weights=null to run with random weights"
            ) from err
        prefix = "features."
        kept = {
            key[len(prefix) :]: value
            for key, value in state.items()
            if key.startswith(prefix) and int(key.split(".")[1]) < len(self.features)
        }
        missing, unexpected = self.features.load_state_dict(kept, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"weights {weights_path or weights} are not a VGG-16 state dict "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
