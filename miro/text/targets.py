"""Per-post text targets as a cached artifact: a fitted text model and one vector per post.

The cache key is the hash of what produced the artifact (the embedder's parameters and every
post's id, split and caption), so a second run on the same data reuses the fitted model.

The cached vectors are the text model's own (topic distributions, mean word vectors): every
loss maps them into its space itself (``miro.losses``), so one fitted model serves all losses.
A caption with no word in the text model's vocabulary gets an all-zero vector; the losses
ignore such posts.
"""

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self, TypeVar

import numpy as np

from miro.text.tokenize import CaptionTokenizer

log = logging.getLogger(__name__)


@dataclass
class TextModelSummary:
    """What a fitted text model learned, as a table for a researcher to read.

    ``wandb.Table(columns=summary.columns, data=summary.rows)`` logs it; ``str(summary)`` is
    plain text for a log file.
    """

    title: str
    columns: list[str]
    rows: list[list]

    def __str__(self) -> str:
        lines = [self.title, " | ".join(self.columns)]
        lines += [" | ".join(str(cell) for cell in row) for row in self.rows]
        return "\n".join(lines)


class TextEmbedder(Protocol):
    """What a text model offers: fit on captions, map captions to vectors, persist, describe."""

    dim: int
    tokenizer: CaptionTokenizer

    def params(self) -> dict: ...
    def fit(self, captions: Sequence[str]) -> Self: ...
    def transform(self, captions: Sequence[str]) -> np.ndarray: ...
    def knows(self, word: str) -> bool: ...
    def describe(self, n: int = 10, probes: Sequence[str] | None = None) -> TextModelSummary: ...
    def save(self, directory: Path) -> None: ...
    @classmethod
    def load(cls, directory: Path) -> Self: ...


Embedder = TypeVar("Embedder", bound=TextEmbedder)


def save_settings(embedder: TextEmbedder, directory: Path) -> None:
    """Write what every embedder's ``save`` writes: its parameters and its tokenizer's learned
    vocabulary (``load_settings`` reads them back)."""
    embedder.tokenizer.save_vocabulary(directory / "tokenizer_vocabulary.json")
    (directory / "params.json").write_text(json.dumps(embedder.params(), indent=2))


def load_settings(embedder_cls: type[Embedder], directory: Path) -> Embedder:
    """An unfitted ``embedder_cls`` with the parameters and tokenizer ``save_settings`` wrote."""
    params = json.loads((directory / "params.json").read_text())
    tokenizer = CaptionTokenizer(**params.pop("tokenizer"))
    tokenizer.load_vocabulary(directory / "tokenizer_vocabulary.json")
    return embedder_cls(tokenizer, **params)


@dataclass
class TextTargets:
    """A fitted text model and the target vector of each post, rows aligned with ``ids``."""

    embedder: TextEmbedder
    ids: list[str]
    vectors: np.ndarray
    directory: Path


def artifact_key(
    embedder: TextEmbedder, ids: Sequence[str], splits: Sequence[str], captions: Sequence[str]
) -> str:
    """Hash of the embedder's parameters and the posts it is fitted on and applied to."""
    digest = hashlib.sha256()
    digest.update(type(embedder).__name__.encode())
    digest.update(json.dumps(embedder.params(), sort_keys=True).encode())
    for post_id, split, caption in zip(ids, splits, captions, strict=True):
        digest.update(f"{post_id}\0{split}\0{caption}\0".encode())
    return digest.hexdigest()[:16]


def fit_text_targets(
    embedder: TextEmbedder,
    ids: Sequence[str],
    splits: Sequence[str],
    captions: Sequence[str],
    cache_dir: Path,
) -> TextTargets:
    """Fit ``embedder`` on the training captions and embed every caption, or load both from cache.

    Writes ``cache_dir/<key>/`` atomically, so an interrupted fit leaves no half artifact.
    """
    directory = cache_dir / artifact_key(embedder, ids, splits, captions)
    if (directory / "targets.npy").exists():
        log.info("text model reused from cache: %s", directory)
    else:
        train_captions = [c for c, s in zip(captions, splits, strict=True) if s == "train"]
        if not train_captions:
            raise ValueError("the dataset has no training posts to fit the text model on")
        log.info("fitting %s on %d training captions", type(embedder).__name__, len(train_captions))
        embedder.fit(train_captions)
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".staging-"))
        embedder.save(staging / "model")
        (staging / "ids.json").write_text(json.dumps(list(ids)))
        vectors = embedder.transform(captions)
        np.save(staging / "targets.npy", vectors)
        empty = int((~vectors.any(axis=1)).sum())
        if empty:
            log.warning(
                "%d of %d captions have no word in the text model's vocabulary: their targets "
                "are zero vectors, which the losses ignore",
                empty,
                len(captions),
            )
        try:
            staging.rename(directory)
        except OSError:  # another process finished the same artifact first
            shutil.rmtree(staging)
        log.info("text model fitted and cached: %s\n%s", directory, embedder.describe())
    return load_text_targets(directory, type(embedder))


def load_text_targets(directory: Path, embedder_cls: type[TextEmbedder]) -> TextTargets:
    return TextTargets(
        embedder=embedder_cls.load(directory / "model"),
        ids=json.loads((directory / "ids.json").read_text()),
        vectors=np.load(directory / "targets.npy"),
        directory=directory,
    )
