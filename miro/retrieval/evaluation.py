"""Score a trained encoder by text-to-image retrieval on a held-out split: P@5 and mAP of the
configured queries, each beside chance (the protocol of "Learning to Learn from Web Data").

Example::

    evaluation = evaluate_encoder("run/checkpoints/last.ckpt", "data/dataset", QUERIES)
    print(evaluation.table())          # one row a query, then the means beside chance
    evaluation.metrics()               # {"test/map": ..., "test/p_at_5": ..., ...}
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_pipeline.manifest import SPLITS, read_manifest
from miro.devices import resolve_device
from miro.models.checkpoints import load_encoder
from miro.retrieval.embed import embed_images, resolve_image_size
from miro.retrieval.errors import RetrievalError
from miro.retrieval.metrics import RetrievalScores, mean_overlap, score_retrieval, top_k_overlap
from miro.retrieval.queries import (
    RetrievalQueries,
    find_ground_truth,
    post_labels,
    retrieval_queries,
)
from miro.retrieval.store import cosine_ranking


@dataclass
class Evaluation:
    """The queries of one split and their scores."""

    split: str
    num_posts: int
    queries: RetrievalQueries
    scores: RetrievalScores
    ground_truth: Path | None
    rankings: np.ndarray  # (Q, N) post positions, best first
    skipped_images: int = 0

    def metrics(self) -> dict[str, float]:
        """``{split}/map``, ``/map_chance``, ``/p_at_k``, ``/p_at_k_chance``, the same per query
        language (``/map_en``, ...) and ``/overlap_at_10`` (when a label has several words), as
        training logs them."""
        prefix = f"{self.split}/"
        return (
            self.scores.means(prefix=prefix)
            | self.scores.means_by_language(self.queries.languages, prefix=prefix)
            | mean_overlap(self.rankings, self.queries.labels, prefix)
        )

    def cross_lingual_overlap(self, k: int = 10) -> dict[str, float]:
        """For each label asked in several words (languages), the mean share of the top ``k``
        that two of its words have in common: 1 when every language finds the same posts."""
        return top_k_overlap(self.rankings, self.queries.labels, k)

    def language_rows(self) -> list[dict]:
        """One row a query language: its queries' mAP and P@k beside chance."""
        means = self.scores.means_by_language(self.queries.languages)
        k = self.scores.k
        languages = sorted({code for codes in self.queries.languages for code in codes})
        return [
            {
                "language": language,
                "queries": sum(language in codes for codes in self.queries.languages),
                "map": means[f"map_{language}"],
                "map_chance": means[f"map_chance_{language}"],
                f"p_at_{k}": means[f"p_at_{k}_{language}"],
                f"p_at_{k}_chance": means[f"p_at_{k}_chance_{language}"],
            }
            for language in languages
        ]

    def query_rows(self) -> list[dict]:
        """One row a query: its word, label, relevant posts, AP and P@k."""
        scores, k = self.scores, self.scores.k
        return [
            {
                "word": word,
                "label": label,
                "languages": list(languages),
                "relevant": int(scores.num_relevant[q]),
                "ap": float(scores.average_precision[q]),
                f"p_at_{k}": float(scores.precision_at_k[q]),
            }
            for q, (word, label, languages) in enumerate(
                zip(self.queries.words, self.queries.labels, self.queries.languages, strict=True)
            )
        ]

    def table(self) -> str:
        """A per-query table, then the means beside chance, for a terminal."""
        k, scores = self.scores.k, self.scores
        relevance = (
            f"ground-truth labels ({self.ground_truth})" if self.ground_truth else "captions"
        )
        lines = [
            f"split {self.split}: {self.num_posts} posts, relevance by {relevance}",
            f"{'query':<12} {'label':<10} {'relevant':>8} {'AP':>6} {f'P@{k}':>6}",
        ]
        for row in self.query_rows():
            lines.append(
                f"{row['word']:<12} {row['label']:<10} {row['relevant']:>8} "
                f"{row['ap']:>6.3f} {row[f'p_at_{k}']:>6.3f}"
            )
        means = self.scores.means()
        answered = int((scores.num_relevant > 0).sum())
        lines.append(
            f"mean over {answered} queries with a relevant post: "
            f"mAP {means['map']:.3f} (chance {means['map_chance']:.3f}), "
            f"P@{k} {means[f'p_at_{k}']:.3f} (chance {means[f'p_at_{k}_chance']:.3f})"
        )
        if any(self.queries.languages):
            header = ("language", "queries", "mAP", "chance", f"P@{k}", "chance")
            lines.append("{:<9} {:>7} {:>6} {:>6} {:>6} {:>6}".format(*header))
            for row in self.language_rows():
                lines.append(
                    f"{row['language']:<9} {row['queries']:>7} {row['map']:>6.3f} "
                    f"{row['map_chance']:>6.3f} {row[f'p_at_{k}']:>6.3f} "
                    f"{row[f'p_at_{k}_chance']:>6.3f}"
                )
        if overlap := self.cross_lingual_overlap():
            mean = self.metrics()[f"{self.split}/overlap_at_10"]
            each = ", ".join(f"{label} {value:.2f}" for label, value in overlap.items())
            lines.append(f"top-10 overlap across a label's languages: {mean:.2f} ({each})")
        if self.queries.unknown:
            lines.append(f"words the text model does not know, skipped: {self.queries.unknown}")
        if self.skipped_images:
            lines.append(f"unreadable images left out: {self.skipped_images}")
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        """The means and the per-query rows as JSON."""
        report = {
            "split": self.split,
            "posts": self.num_posts,
            "ground_truth": str(self.ground_truth) if self.ground_truth else None,
            "metrics": self.metrics(),
            "queries": self.query_rows(),
            "languages": self.language_rows(),
            "cross_lingual_overlap_at_10": self.cross_lingual_overlap(),
            "unknown_words": self.queries.unknown,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def evaluate_encoder(
    ckpt: str | Path,
    dataset_dir: str | Path,
    queries: Mapping[str, Sequence[str]] | Sequence[str],
    split: str = "test",
    labels: str | Path | None = "auto",
    k: int = 5,
    image_size: int | str = "auto",
    batch_size: int = 64,
    num_workers: int = 2,
    device: str = "auto",
    text_model_dir: str | Path | None = None,
    progress: bool = True,
) -> Evaluation:
    """Embed the ``split`` posts of ``dataset_dir`` with the encoder of ``ckpt`` and score
    ``queries`` (``label → words`` or a list, see ``miro.retrieval.queries``) by P@``k`` and mAP.

    ``labels``: ``auto`` judges relevance by the synthetic ground truth when the dataset was
    built from it, else by the captions; a path names the ground truth; None: captions.
    """
    if split not in SPLITS:
        raise RetrievalError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if k < 1:
        raise RetrievalError(f"k must be at least 1, got {k}")
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    rows = [i for i, s in enumerate(manifest["split"]) if s == split]
    if not rows:
        raise RetrievalError(f"{dataset_dir} has no {split} posts; choose another split=")
    loaded = load_encoder(ckpt, text_model_dir)
    if loaded.text_model is None:
        raise RetrievalError(f"cannot embed the queries: {loaded.text_model_error}")
    loaded.encoder.to(resolve_device(device))
    embedded = embed_images(
        loaded.encoder,
        loaded.to_text_space,
        [dataset_dir / manifest["image"][i] for i in rows],
        resolve_image_size(image_size, ckpt),
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    if not embedded.rows:
        raise RetrievalError(f"no readable {split} image in {dataset_dir}")
    posts = [rows[i] for i in embedded.rows]
    ground_truth = find_ground_truth(dataset_dir, labels)
    found = retrieval_queries(
        queries,
        loaded.text_model,
        [manifest["caption"][i] for i in posts],
        post_labels(ground_truth, [manifest["id"][i] for i in posts]),
        loaded.prepare_targets,
    )
    rankings = cosine_ranking(embedded.vectors, found.vectors)
    scores = score_retrieval(rankings, found.relevance, k)
    return Evaluation(
        split, len(posts), found, scores, ground_truth, rankings, len(embedded.skipped)
    )
