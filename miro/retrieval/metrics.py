"""Retrieval metrics: average precision and precision at k of rankings (torchmetrics'), each
beside its expected value under a random ranking (ours: no library has it), per query language,
and how far queries in different languages agree."""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.retrieval import retrieval_average_precision, retrieval_precision


def chance_average_precision(num_relevant: int, num_items: int) -> float:
    """Expected AP of a uniformly random ranking of ``num_items`` with ``num_relevant`` hits.

    A relevant item sits at rank k with probability 1/N, with (k-1)(R-1)/(N-1) other hits
    expected above it, so E[AP] = (H_N + (R-1)/(N-1) · (N - H_N)) / N, H_N the harmonic number.
    """
    n, r = num_items, num_relevant
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    if n == 1:
        return 1.0
    return (harmonic + (r - 1) / (n - 1) * (n - harmonic)) / n


@dataclass
class RetrievalScores:
    """Per-query scores of full rankings: AP and precision at ``k``, each beside its chance.

    Queries with no relevant item are NaN everywhere and left out of the means.
    """

    k: int
    num_relevant: np.ndarray  # (Q,) int
    average_precision: np.ndarray  # (Q,)
    chance_average_precision: np.ndarray  # (Q,)
    precision_at_k: np.ndarray  # (Q,)
    chance_precision_at_k: np.ndarray  # (Q,): R / N, a random ranking's expected precision

    def means(self, prefix: str = "") -> dict[str, float]:
        """``{prefix}map``, ``map_chance``, ``p_at_{k}`` and ``p_at_{k}_chance`` over the
        answerable queries (NaN when there are none)."""
        answerable = self.num_relevant > 0
        columns = {
            "map": self.average_precision,
            "map_chance": self.chance_average_precision,
            f"p_at_{self.k}": self.precision_at_k,
            f"p_at_{self.k}_chance": self.chance_precision_at_k,
        }
        return {
            f"{prefix}{name}": float(values[answerable].mean()) if answerable.any() else math.nan
            for name, values in columns.items()
        }

    def subset(self, queries: np.ndarray) -> "RetrievalScores":
        """The scores of the queries selected by ``queries`` (a ``(Q,)`` bool mask or indices)."""
        return RetrievalScores(
            self.k,
            self.num_relevant[queries],
            self.average_precision[queries],
            self.chance_average_precision[queries],
            self.precision_at_k[queries],
            self.chance_precision_at_k[queries],
        )

    def means_by_language(
        self, languages: Sequence[Sequence[str]], prefix: str = ""
    ) -> dict[str, float]:
        """``means`` over the queries of each language: ``{prefix}map_<language>``, ...;
        ``languages[q]`` are query ``q``'s languages (a word of two languages counts in both)."""
        scores = {}
        for language in sorted({code for codes in languages for code in codes}):
            chosen = np.array([language in codes for codes in languages])
            means = self.subset(chosen).means()
            scores |= {f"{prefix}{name}_{language}": value for name, value in means.items()}
        return scores


def top_k_overlap(rankings: np.ndarray, labels: Sequence[str], k: int = 10) -> dict[str, float]:
    """How much the top ``k`` of queries that ask for the same thing agree: for each label
    (``labels[q]`` of ranking row ``q``: one concept's words in several languages), the mean
    over pairs of its queries of the share of their top ``k`` items in common, in [0, 1];
    labels of one query are left out."""
    tops: dict[str, list[set]] = {}
    for row, label in enumerate(labels):
        tops.setdefault(label, []).append(set(rankings[row, :k].tolist()))
    return {
        label: float(np.mean([len(a & b) / k for a, b in itertools.combinations(sets, 2)]))
        for label, sets in tops.items()
        if len(sets) > 1
    }


def mean_overlap(rankings: np.ndarray, labels: Sequence[str], prefix: str = "") -> dict[str, float]:
    """``{prefix}overlap_at_10``: the mean of ``top_k_overlap`` (k = 10) over the labels asked in
    several words; empty when no label is (nothing to compare, so nothing logged)."""
    overlap = top_k_overlap(rankings, labels, k=10)
    return {f"{prefix}overlap_at_10": float(np.mean(list(overlap.values())))} if overlap else {}


def score_retrieval(rankings: np.ndarray, relevance: np.ndarray, k: int = 5) -> RetrievalScores:
    """Score full rankings.

    Args:
        rankings: ``(Q, N)`` item indices per query, best first (every item once).
        relevance: ``(Q, N)`` bool, ``relevance[q, i]`` if item ``i`` is relevant to query ``q``.
        k: the cut-off of precision at k (the papers' P@5).
    """
    num_queries, num_items = relevance.shape
    scores = np.full((4, num_queries), np.nan)
    num_relevant = relevance.sum(axis=1)
    rank_scores = torch.arange(num_items, 0, -1, dtype=torch.float32)  # best first, no ties
    for q in np.flatnonzero(num_relevant):
        ranked = torch.from_numpy(relevance[q, rankings[q]])
        scores[:, q] = (
            retrieval_average_precision(rank_scores, ranked),
            chance_average_precision(int(num_relevant[q]), num_items),
            retrieval_precision(rank_scores, ranked, top_k=k),
            num_relevant[q] / num_items,
        )
    return RetrievalScores(k, num_relevant, *scores)
