"""Deterministic train/val/test splits from a hash of the post id.

A post's split depends only on its id and the fractions, so adding posts later never moves an
old post to another split, and every machine computes the same splits.

Example::

    assign_split("C1a2B3c4D5e", {"train": 0.8, "val": 0.1, "test": 0.1})  # 'train'
"""

import hashlib
import math
from collections.abc import Mapping


def split_fraction(post_id: str) -> float:
    """A number in ``[0, 1)`` that looks uniform over ids: the first 8 bytes of sha1(id)."""
    digest = hashlib.sha1(post_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class SplitFractionsError(ValueError):
    """Split fractions that are empty, negative or do not sum to 1."""


def check_fractions(fractions: Mapping[str, float]) -> None:
    """Raise ``SplitFractionsError`` unless the fractions are >= 0 and sum to 1."""
    if not fractions:
        raise SplitFractionsError(
            "splits is empty; give fractions such as {train: 0.8, val: 0.1, test: 0.1}"
        )
    negative = {name: value for name, value in fractions.items() if value < 0}
    if negative:
        raise SplitFractionsError(f"split fractions must be >= 0, got {negative}")
    total = sum(fractions.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise SplitFractionsError(
            f"split fractions must sum to 1, got {dict(fractions)} (sum {total:g})"
        )


def assign_split(post_id: str, fractions: Mapping[str, float]) -> str:
    """The split of ``post_id``: fractions are laid end to end on ``[0, 1)`` in their order."""
    position = split_fraction(post_id)
    cumulative = 0.0
    for name, fraction in fractions.items():
        cumulative += fraction
        if position < cumulative:
            return name
    return next(name for name, fraction in reversed(fractions.items()) if fraction > 0)
