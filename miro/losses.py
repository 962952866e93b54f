"""Losses. Text supervision: a loss compares the encoder's raw outputs with text targets and
says how outputs map into the text space, where retrieval compares them with text queries.
Style transfer: Gram-matrix style, feature content and total-variation losses (Gatys et al.
2016; Johnson et al. 2016; Dumoulin et al. 2017), plain functions of loss-network features.
"""

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn


class SigmoidCrossEntropy(nn.Module):
    """Sigmoid cross-entropy toward targets in [0, 1] (TextTopicNet, Gomez et al. 2017).

    Topic distributions are already in [0, 1]; the prediction in the text space is the sigmoid
    of the outputs.
    """

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``outputs`` and ``targets`` ``(B, D)``; targets in [0, 1]. Returns a scalar."""
        return F.binary_cross_entropy_with_logits(outputs, targets)

    def to_text_space(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(outputs)


# Style transfer. Convention (one for all of these): the loss network sees [0, 1] RGB images
# ImageNet-normalized inside it (torchvision's VGG-16 convention, ``miro.models.vgg``), not
# Magenta's [0, 255] mean-subtracted input; loss weights are calibrated for this convention.


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices ``FᵀF / (H·W)`` of features ``(B, C, H, W)`` → ``(B, C, C)``, in float32.

    Normalized by the number of positions only (Dumoulin et al. 2017, Magenta), so a style
    image's Gram does not depend on its size. Always float32: squares overflow half precision.
    """
    batch, channels, height, width = features.shape
    with torch.autocast(features.device.type, enabled=False):
        flat = features.float().reshape(batch, channels, height * width)
        return torch.bmm(flat, flat.transpose(1, 2)) / (height * width)


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Per-image style loss ``(B,)``: for each layer, the mean over its C×C entries of the
    squared difference between the Gram of ``features[layer]`` ``(B, C, H, W)`` and
    ``target_grams[layer]`` ``(B, C, C)`` (each image's own style), weighted and summed.

    Args:
        layer_weights: weight per layer of ``target_grams``; 1 for each when None.
    """
    total = 0.0
    for layer, target in target_grams.items():
        weight = 1.0 if layer_weights is None else layer_weights[layer]
        difference = gram_matrix(features[layer]) - target
        total = total + weight * difference.square().mean(dim=(1, 2))
    return total


def content_loss(features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between stylized and content features (same shape); scalar."""
    return F.mse_loss(features.float(), targets.float())


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels, vertical plus horizontal, of images
    ``(B, C, H, W)`` in [0, 1]; a scalar that is 0 for flat images."""
    vertical = (images[:, :, 1:] - images[:, :, :-1]).square().mean()
    horizontal = (images[:, :, :, 1:] - images[:, :, :, :-1]).square().mean()
    return vertical + horizontal
