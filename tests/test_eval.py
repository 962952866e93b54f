import numpy as np
import pytest

from miro.retrieval.metrics import (
    chance_average_precision,
    mean_overlap,
    score_retrieval,
    top_k_overlap,
)
from miro.retrieval.store import cosine_ranking


def average_precision(ranked_relevance: np.ndarray) -> float:
    """AP of one ranking given in rank order, through ``score_retrieval``."""
    ranking = np.arange(len(ranked_relevance))[None]
    return float(score_retrieval(ranking, ranked_relevance[None]).average_precision[0])


def test_average_precision_of_known_rankings():
    assert average_precision(np.array([True, False, True])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([False, False, True])) == pytest.approx(1 / 3)
    rankings = np.array([[2, 0, 1]])  # item 2 first, then 0, then 1
    relevance = np.array([[False, False, True]])
    assert score_retrieval(rankings, relevance).average_precision[0] == 1.0


def test_chance_average_precision_matches_random_rankings():
    rng = np.random.default_rng(0)
    relevant = np.zeros(40, dtype=bool)
    relevant[:6] = True
    simulated = np.mean([average_precision(rng.permutation(relevant)) for _ in range(5000)])
    assert chance_average_precision(6, 40) == pytest.approx(simulated, abs=0.005)
    assert chance_average_precision(40, 40) == pytest.approx(1.0)


def test_map_skips_queries_without_relevant_items():
    rankings = np.array([[0, 1, 2], [2, 1, 0]])
    relevance = np.array([[True, False, False], [False, False, False]])
    means = score_retrieval(rankings, relevance).means()
    score, chance = means["map"], means["map_chance"]
    assert score == 1.0
    assert chance == pytest.approx(chance_average_precision(1, 3))


def test_cosine_ranking_orders_by_angle_not_length():
    items = np.array([[10.0, 0.0], [1.0, 1.0], [0.0, 0.1]], dtype=np.float32)
    queries = np.array([[0.0, 1.0], [1.0, 0.2]], dtype=np.float32)
    assert cosine_ranking(items, queries).tolist() == [[2, 1, 0], [0, 1, 2]]
    assert cosine_ranking(items, queries, k=1).tolist() == [[2], [0]]


def test_precision_at_k_and_its_chance():
    rankings = np.array([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]])
    relevance = np.array([[True, False, True, False, False, False]] * 2)
    scores = score_retrieval(rankings, relevance, k=2)
    assert scores.precision_at_k.tolist() == [0.5, 0.0]
    assert scores.chance_precision_at_k.tolist() == pytest.approx([2 / 6, 2 / 6])
    means = scores.means(prefix="val/")
    assert means["val/p_at_2"] == 0.25
    assert means["val/map"] == pytest.approx(((1 + 2 / 3) / 2 + (1 / 4 + 2 / 6) / 2) / 2)


def test_chance_precision_matches_random_rankings():
    rng = np.random.default_rng(0)
    relevance = np.zeros((1, 30), dtype=bool)
    relevance[0, :7] = True
    rankings = np.array([rng.permutation(30) for _ in range(20000)])
    simulated = score_retrieval(rankings, np.repeat(relevance, len(rankings), axis=0), k=5)
    assert simulated.chance_precision_at_k[0] == pytest.approx(
        simulated.precision_at_k.mean(), abs=0.01
    )


def test_means_by_language_average_each_language_s_queries():
    relevance = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=bool)
    rankings = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2]])  # hits at ranks 1, 2, 3
    scores = score_retrieval(rankings, relevance, k=1)
    means = scores.means_by_language([("en",), ("es", "ca"), ("es",)], prefix="test/")
    assert means["test/map_en"] == 1.0
    assert means["test/map_es"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert means["test/map_ca"] == pytest.approx(1 / 2)
    assert means["test/p_at_1_es"] == 0.0 and means["test/p_at_1_chance_en"] == pytest.approx(1 / 3)


def test_top_k_overlap_is_the_share_of_the_top_k_two_words_agree_on():
    rankings = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 0, 1, 2], [0, 2, 1, 3]])
    labels = ["star", "star", "moon", "moon", "sun"]
    overlap = top_k_overlap(rankings, labels, k=2)
    assert overlap == {"star": 1.0, "moon": 0.5}  # sun: one word, nothing to agree with
    assert top_k_overlap(rankings, ["moon", "moon", "moon", "x", "y"], k=2)[
        "moon"
    ] == pytest.approx((1 + 0 + 0) / 3)
    first = np.arange(20)
    second = np.concatenate([first[:5], first[10:15], first[5:10], first[15:]])  # 5 of 10 shared
    assert mean_overlap(np.stack([first, second]), ["star", "star"], prefix="val/") == {
        "val/overlap_at_10": 0.5
    }
    assert mean_overlap(rankings, list("abcde")) == {}  # no label asked twice: nothing to log
