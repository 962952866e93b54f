"""GoogLeNet image encoder into a text embedding space.

Szegedy et al., "Going Deeper with Convolutions", 2015, as used by Gomez et al., "Learning to
Learn from Web Data", 2018: torchvision's GoogLeNet with a new linear head of ``embed_dim``
outputs (one per topic or word-vector dimension), trained from scratch or from ImageNet.

Example::

    encoder = GoogLeNetEncoder(embed_dim=40)
    outputs = encoder(images)  # images (B, 3, H, W) in [0, 1] → (B, 40)
"""

import torch
from torch import nn
from torchvision.models import GoogLeNet

from miro.models.weights import IMAGENET_MEAN, IMAGENET_STD, load_pretrained_state_dict

PRETRAINED_WEIGHTS = {"imagenet": "GoogLeNet_Weights.IMAGENET1K_V1"}


class GoogLeNetEncoder(nn.Module):
    """GoogLeNet trunk (``self.net``, torchvision layer names) with a text-space head.

    Args:
        embed_dim: size of the text space.
        pretrained: ``None`` (from scratch) or ``"imagenet"``.
        weights_path: a local GoogLeNet state dict, instead of torchvision's cache.
        dropout: dropout before the head.
    """

    def __init__(
        self,
        embed_dim: int,
        pretrained: str | None = None,
        weights_path: str | None = None,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        from_imagenet = pretrained is not None or weights_path is not None
        if pretrained is not None and pretrained not in PRETRAINED_WEIGHTS:
            raise ValueError(
                f"unknown model.pretrained={pretrained!r}; choose null or one of "
                f"{sorted(PRETRAINED_WEIGHTS)}"
            )
        # torchvision's ImageNet weights expect its transform_input re-scaling.
        self.net = GoogLeNet(
            aux_logits=False,
            transform_input=from_imagenet,
            init_weights=not from_imagenet,
            dropout=dropout,
        )
        if from_imagenet:
            state = load_pretrained_state_dict(PRETRAINED_WEIGHTS.get(pretrained), weights_path)
            trunk = {k: v for k, v in state.items() if not k.startswith(("aux", "fc."))}
            missing, unexpected = self.net.load_state_dict(trunk, strict=False)
            if unexpected or set(missing) - {"fc.weight", "fc.bias"}:
                raise ValueError(
                    f"weights {weights_path or pretrained} are not a GoogLeNet state dict "
                    f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
                )
        self.net.fc = nn.Linear(self.net.fc.in_features, embed_dim)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` float RGB in [0, 1] → raw outputs ``(B, embed_dim)``."""
        return self.net((images - self.mean) / self.std)
