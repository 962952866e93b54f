"""Turn the user's ``style=`` / ``mix=`` into style-weight vectors.

A style is chosen by id (``3``) or by name (``"constellation"``); ``"all"`` picks every style.
A mix ``{0: 0.7, "constellation": 0.3}`` blends the styles' norm parameters
(γ = Σ wᵢγᵢ, β = Σ wᵢβᵢ, Dumoulin et al. 2017) with weights normalized to sum to 1, so
``{i: 1.0}`` is exactly style ``i``.
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from miro.style.errors import StyleChoiceError

StyleKey = int | str


@dataclass(frozen=True)
class StyleChoice:
    """One look to render: its file-name label, its weights by style name, and the vector.

    ``vector`` is ``(num_styles,)`` float, non-negative, summing to 1.
    """

    label: str
    weights: dict[str, float]
    vector: torch.Tensor


def style_labels(style_names: Sequence[str]) -> list[str]:
    """File-name-safe, unique labels for the styles (``id-name`` when names collide)."""
    labels = [
        re.sub(r"[^\w.-]+", "-", name).strip("-.") or f"style{i}"
        for i, name in enumerate(style_names)
    ]
    if len(set(labels)) < len(labels):
        labels = [f"{i}-{label}" for i, label in enumerate(labels)]
    return labels


def describe_styles(style_names: Sequence[str]) -> str:
    return ", ".join(f"{i}={name}" for i, name in enumerate(style_names))


def style_index(key: StyleKey, style_names: Sequence[str]) -> int:
    """The id of style ``key``, given as an id or a name (a name wins over a numeric string)."""
    if isinstance(key, str) and key in style_names:
        return list(style_names).index(key)
    if isinstance(key, str) and re.fullmatch(r"\d+", key.strip()):
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(style_names):
        return key
    kind = "out of range" if isinstance(key, int) and not isinstance(key, bool) else "unknown"
    raise StyleChoiceError(
        f"style {key!r} is {kind}; this checkpoint has {len(style_names)} styles: "
        f"{describe_styles(style_names)} (give an id, a name, or all)"
    )


def choose_styles(
    style: StyleKey | None, mix: Mapping[StyleKey, float] | None, style_names: Sequence[str]
) -> list[StyleChoice]:
    """The looks ``style``/``mix`` ask for: one, or every style for ``style="all"``.

    Returns an empty list when both are None (the caller decides whether that is an error).
    """
    num_styles = len(style_names)
    labels = style_labels(style_names)
    if style is not None and mix is not None:
        raise StyleChoiceError("give either style= or mix=, not both")
    if mix is not None:
        return [mix_choice(mix, style_names, labels)]
    if style is None:
        return []
    indices = range(num_styles) if style == "all" else [style_index(style, style_names)]
    return [
        StyleChoice(labels[i], {style_names[i]: 1.0}, torch.eye(num_styles)[i]) for i in indices
    ]


def mix_choice(
    mix: Mapping[StyleKey, float], style_names: Sequence[str], labels: Sequence[str]
) -> StyleChoice:
    if not isinstance(mix, Mapping) or not mix:
        raise StyleChoiceError(
            f"mix must map styles to weights, e.g. mix={{0: 0.7, 1: 0.3}}; got {mix!r}"
        )
    vector = torch.zeros(len(style_names), dtype=torch.float64)
    for key, weight in mix.items():
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not (math.isfinite(weight) and weight >= 0)
        ):
            raise StyleChoiceError(f"mix weight of style {key!r} must be a number >= 0: {weight!r}")
        vector[style_index(key, style_names)] += weight
    if vector.sum() <= 0:
        raise StyleChoiceError(f"mix weights must not all be 0: {dict(mix)}")
    vector = (vector / vector.sum()).float()
    used = [i for i in range(len(style_names)) if vector[i] > 0]
    label = "mix-" + "-".join(f"{labels[i]}{round(100 * float(vector[i]))}" for i in used)
    weights = {style_names[i]: float(vector[i]) for i in used}
    return StyleChoice(label, weights, vector)
