"""Retrieval metrics: average precision of a ranking and its expected value under chance."""

import numpy as np


def average_precision(ranked_relevance: np.ndarray) -> float:
    """AP of one ranking; ``ranked_relevance`` is a bool array in rank order, with ≥ 1 True."""
    hits = np.cumsum(ranked_relevance)
    ranks = np.arange(1, len(ranked_relevance) + 1)
    return float(np.sum(hits[ranked_relevance] / ranks[ranked_relevance]) / hits[-1])


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


def mean_average_precision(rankings: np.ndarray, relevance: np.ndarray) -> tuple[float, float]:
    """mAP of full rankings and the mAP a random ranking would get, over queries with a hit.

    Args:
        rankings: ``(Q, N)`` item indices per query, best first (every item once).
        relevance: ``(Q, N)`` bool, ``relevance[q, i]`` if item ``i`` is relevant to query ``q``.

    Returns:
        ``(map, chance)``; both NaN when no query has a relevant item.
    """
    scores, chances = [], []
    for ranking, relevant in zip(rankings, relevance, strict=True):
        if relevant.any():
            scores.append(average_precision(relevant[ranking]))
            chances.append(chance_average_precision(int(relevant.sum()), len(relevant)))
    if not scores:
        return float("nan"), float("nan")
    return float(np.mean(scores)), float(np.mean(chances))
