"""Losses. Text supervision: a loss compares the encoder's raw outputs with text targets and
says how outputs map into the text space, where retrieval compares them with text queries."""

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
