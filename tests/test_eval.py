import numpy as np
import pytest

from miro.eval import average_precision, chance_average_precision, mean_average_precision
from miro.index import cosine_ranking


def test_average_precision_of_known_rankings():
    assert average_precision(np.array([True, False, True])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([False, False, True])) == pytest.approx(1 / 3)


def test_chance_average_precision_matches_random_rankings():
    rng = np.random.default_rng(0)
    relevant = np.zeros(40, dtype=bool)
    relevant[:6] = True
    simulated = np.mean([average_precision(rng.permutation(relevant)) for _ in range(20000)])
    assert chance_average_precision(6, 40) == pytest.approx(simulated, abs=0.005)
    assert chance_average_precision(40, 40) == pytest.approx(1.0)


def test_map_skips_queries_without_relevant_items():
    rankings = np.array([[0, 1, 2], [2, 1, 0]])
    relevance = np.array([[True, False, False], [False, False, False]])
    score, chance = mean_average_precision(rankings, relevance)
    assert score == 1.0
    assert chance == pytest.approx(chance_average_precision(1, 3))


def test_cosine_ranking_orders_by_angle_not_length():
    items = np.array([[10.0, 0.0], [1.0, 1.0], [0.0, 0.1]], dtype=np.float32)
    queries = np.array([[0.0, 1.0], [1.0, 0.2]], dtype=np.float32)
    assert cosine_ranking(items, queries).tolist() == [[2, 1, 0], [0, 1, 2]]
    assert cosine_ranking(items, queries, k=1).tolist() == [[2], [0]]
