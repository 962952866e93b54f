"""Nearest-neighbour search over embeddings with faiss."""

import faiss
import numpy as np


def cosine_ranking(items: np.ndarray, queries: np.ndarray, k: int | None = None) -> np.ndarray:
    """Indices of the ``k`` items most cosine-similar to each query, best first.

    Args:
        items: ``(N, D)`` embeddings to search.
        queries: ``(Q, D)`` embeddings to search with.
        k: how many to return per query; all ``N`` by default.

    Returns:
        ``(Q, k)`` int64 item indices.
    """
    items = np.ascontiguousarray(items, dtype=np.float32).copy()
    queries = np.ascontiguousarray(queries, dtype=np.float32).copy()
    faiss.normalize_L2(items)
    faiss.normalize_L2(queries)
    index = faiss.IndexFlatIP(items.shape[1])
    index.add(items)
    _, indices = index.search(queries, k or len(items))
    return indices
