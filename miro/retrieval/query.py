"""Queries in the text space and the ranked posts they find.

A text query is embedded the way training's retrieval validation embeds its queries: the text
model's vector of the phrase, put by the training loss's ``prepare_targets`` into the space where
its ``to_text_space`` puts images, then L2-normalized; an image query is embedded as the indexed
images were. Ranking is by cosine (inner product of unit vectors) in the stored faiss index.

Example::

    vector, unknown = text_query_vector(loaded.text_model, prepare_targets, "red star")
    hits = search(stored, vector, k=12)
    print(format_hits(hits))
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from miro.retrieval.errors import RetrievalError, UnknownWordsError
from miro.retrieval.store import StoredIndex

log = logging.getLogger(__name__)


@dataclass
class Hit:
    """One ranked post: ``rank`` from 1, ``score`` the cosine to the query."""

    rank: int
    id: str
    score: float
    caption: str
    image: Path  # absolute


def text_query_vector(
    text_model, prepare_targets: Callable[[torch.Tensor], torch.Tensor] | None, phrase: str
) -> tuple[np.ndarray, list[str]]:
    """The unit text-space vector ``(D,)`` of ``phrase`` and the words of it the text model
    does not know (left out of the vector, as the text model leaves them out).

    Raises ``UnknownWordsError`` naming the words when the text model knows none of them, and
    ``RetrievalError`` when the phrase has no word left once tokenized.
    """
    words = text_model.tokenizer(phrase)
    if not words:
        raise RetrievalError(
            f"words={phrase!r} has no word left once tokenized (stopwords, short words, "
            "mentions and links are dropped); search with content words"
        )
    unknown = [word for word in words if not text_model.knows(word)]
    if len(unknown) == len(words):
        raise UnknownWordsError(
            phrase,
            unknown,
            f"the text model knows none of the words of words={phrase!r}: unknown "
            f"{', '.join(repr(w) for w in unknown)}; use words that occur in the training captions",
        )
    vector = torch.from_numpy(np.asarray(text_model.transform([phrase]), dtype=np.float32))
    if prepare_targets is not None:
        vector = prepare_targets(vector)
    vector = vector[0].numpy().astype(np.float32)
    norm = float(np.linalg.norm(vector))
    if norm == 0:
        raise RetrievalError(f"words={phrase!r} maps to a zero vector: nothing to rank by")
    return vector / norm, unknown


def search(stored: StoredIndex, vector: np.ndarray, k: int) -> list[Hit]:
    """The ``k`` posts of ``stored`` nearest to the unit ``vector`` ``(D,)``, best first."""
    if k < 1:
        raise RetrievalError(f"k must be at least 1, got {k}")
    if vector.shape != (stored.meta.dim,):
        raise RetrievalError(
            f"query vector of shape {vector.shape} for a {stored.meta.dim}-d index"
        )
    query = np.ascontiguousarray(vector[None], dtype=np.float32)
    scores, rows = stored.index.search(query, min(k, stored.index.ntotal))
    dataset = Path(stored.meta.dataset_dir)
    posts = stored.posts
    found = [(float(s), int(r)) for s, r in zip(scores[0], rows[0], strict=True) if r >= 0]
    return [
        Hit(rank, posts["id"][row], score, posts["caption"][row], dataset / posts["image"][row])
        for rank, (score, row) in enumerate(found, start=1)
    ]


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def format_hits(hits: list[Hit], caption_width: int = 60) -> str:
    """A plain-text table: rank, id, score, caption shortened."""
    id_width = max([len("id"), *(len(hit.id) for hit in hits)])
    lines = [f"{'rank':>4}  {'id':<{id_width}}  {'score':>6}  caption"]
    for hit in hits:
        caption = shorten(hit.caption, caption_width)
        lines.append(f"{hit.rank:>4}  {hit.id:<{id_width}}  {hit.score:>6.3f}  {caption}")
    return "\n".join(lines)
