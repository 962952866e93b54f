"""DeepDream objectives: small functions of activations that add and scale (Lucid style).

An objective maps ``{layer: activations}`` to one score per image ``(B,)``; the dream climbs its
gradient. Each knows the layers it reads (``objective.layers``), so the dream model stops at the
deepest of them. Objectives follow Mordvintsev, Olah and Tyka, "Inceptionism" (Google, 2015)
and its notebook (layer = L2, guided dream), and Olah et al., "Feature Visualization" (Distill,
2017; Lucid's ``neuron``, ``channel``, ``layer``); ``text`` adds a text-space direction.

Example::

    objective = 0.7 * layer("inception4c") + 0.3 * text(vector)
    scores = objective(model(images, objective.layers))   # (B,)
"""

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from miro.deepdream.models import TEXT_LAYER, DreamModel

Activations = Mapping[str, torch.Tensor]


class Objective:
    """A score per image from activations, with the layers it reads and a readable name.

    Objectives combine with ``+``, ``-`` and scalar ``*`` / ``/``; ``sum()`` of objectives works.
    """

    def __init__(
        self, score: Callable[[Activations], torch.Tensor], layers: frozenset[str], name: str
    ) -> None:
        self.score = score
        self.layers = frozenset(layers)
        self.name = name

    def __call__(self, activations: Activations) -> torch.Tensor:
        """``{layer: (B, ...)}`` → scores ``(B,)``."""
        return self.score(activations)

    def __repr__(self) -> str:
        return self.name

    def __add__(self, other: "Objective | float") -> "Objective":
        if isinstance(other, int | float):
            if other == 0:  # sum() starts from 0
                return self
            return NotImplemented
        return Objective(
            lambda acts: self(acts) + other(acts),
            self.layers | other.layers,
            f"{self.name} + {other.name}",
        )

    __radd__ = __add__

    def __mul__(self, weight: float) -> "Objective":
        if not isinstance(weight, int | float):
            return NotImplemented
        return Objective(lambda acts: weight * self(acts), self.layers, f"{weight:g} * {self.name}")

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> "Objective":
        return self * (1 / divisor)

    def __neg__(self) -> "Objective":
        return -1 * self

    def __sub__(self, other: "Objective") -> "Objective":
        return self + (-other)


def layer(name: str) -> Objective:
    """Mean squared activation of layer ``name``: the classic DeepDream (Google's L2 objective,
    whose gradient is the activations themselves) — amplify whatever the layer sees."""
    return Objective(lambda acts: acts[name].square().flatten(1).mean(1), {name}, f"layer({name})")


def channel(name: str, k: int) -> Objective:
    """Mean activation of channel ``k`` of layer ``name`` (for a ``(B, C)`` layer, its entry k)."""

    def score(acts: Activations) -> torch.Tensor:
        return acts[name][:, k].flatten(1).mean(1)

    return Objective(score, {name}, f"channel({name}, {k})")


def neuron(name: str, k: int) -> Objective:
    """Activation of channel ``k`` of layer ``name`` at the centre position of the feature map."""

    def score(acts: Activations) -> torch.Tensor:
        maps = acts[name]
        return maps[:, k, maps.shape[2] // 2, maps.shape[3] // 2]

    return Objective(score, {name}, f"neuron({name}, {k})")


def guide(name: str, guide_activations: torch.Tensor) -> Objective:
    """Google's guided dream: at each position of layer ``name`` the gradient is the guide
    feature with the largest dot product with the image's feature there, so the image grows
    toward what the guide image shows.

    Args:
        guide_activations: the guide image's activations at ``name``, ``(1, C, h, w)`` or
            ``(C, N)``; see ``guide_features``.
    """
    guides = guide_activations.detach()
    guides = guides.flatten(2)[0] if guides.dim() == 4 else guides  # (C, N)

    def score(acts: Activations) -> torch.Tensor:
        features = acts[name].flatten(2)  # (B, C, P)
        matches = torch.einsum("bcp,cn->bpn", features.detach(), guides.to(features)).argmax(2)
        chosen = guides.to(features).T[matches]  # (B, P, C): the best guide per position
        return torch.einsum("bcp,bpc->b", features, chosen) / features.shape[2]

    return Objective(score, {name}, f"guide({name})")


def text(vector: torch.Tensor | np.ndarray) -> Objective:
    """Cosine between a text-supervised encoder's ``output`` (its embedding in the text space)
    and ``vector`` ``(D,)``, a text embedding such as ``text_vector(text_model, "bird")``."""
    target = torch.as_tensor(np.asarray(vector), dtype=torch.float32).flatten()

    def score(acts: Activations) -> torch.Tensor:
        outputs = acts[TEXT_LAYER]
        if outputs.shape[1] != target.numel():
            raise ValueError(
                f"the text vector has {target.numel()} dimensions but the encoder's text space "
                f"has {outputs.shape[1]}; make the vector with this encoder's text model"
            )
        return F.cosine_similarity(outputs, target.to(outputs)[None], dim=1)

    return Objective(score, {TEXT_LAYER}, "text")


@torch.no_grad()
def guide_features(model: DreamModel, guide_image: torch.Tensor, name: str) -> torch.Tensor:
    """Activations ``(1, C, h, w)`` of ``guide_image`` ``(1, 3, H, W)`` in [0, 1] at layer
    ``name``: the input of ``guide``. Google's notebook used a guide of about 224 px."""
    image = guide_image if guide_image.dim() == 4 else guide_image[None]
    return model(image.to(model.mean.device), [name])[name]
