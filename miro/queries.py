"""The text queries of the retrieval evaluation, and the held-out posts each one should find.

The protocol of "Learning to Learn from Web Data" (Gomez et al., 2017): each query word ranks
the held-out images by cosine to its text vector; a post is relevant when its caption holds the
word, or, where ground-truth labels exist (the synthetic set), when its labels hold the query's
label. Queries are configured as ``label → words`` so one concept is asked in every language of
the data (``star: [star, estrella, estel, étoile]``); a plain list makes each word its own label.

Example::

    spec = {"star": ["star", "estrella"], "red": ["red", "rojo"]}
    labels = read_ground_truth(find_ground_truth("data/demo/dataset"))   # or None: captions
    queries = retrieval_queries(spec, text_model, captions, [labels[i] for i in ids])
    queries.words, queries.vectors, queries.relevance   # (Q,), (Q, D), (Q, N)
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

GROUND_TRUTH = "ground_truth.jsonl"  # written by `python -m data_pipeline.synthetic`
BUILD_REPORT = "report.json"  # written by `python -m data_pipeline.build`; names the raw dir


class QueryError(ValueError):
    """Queries or labels that cannot be evaluated; the message says what to change."""


@dataclass
class RetrievalQueries:
    """Text queries over one split: their words, labels, text-space vectors and relevant posts."""

    words: list[str]
    labels: list[str]
    vectors: np.ndarray  # (Q, D)
    relevance: np.ndarray  # (Q, N) bool over the split's posts, in dataset order
    by_label: bool = False  # relevance from ground-truth labels rather than captions
    unknown: list[str] = field(default_factory=list)  # configured words the text model lacks


def query_labels(spec: Mapping[str, Sequence[str]] | Sequence[str]) -> dict[str, str]:
    """``word → label`` of a ``label → words`` mapping, or of a list (each word its own label)."""
    if isinstance(spec, Mapping):
        pairs = [(word, label) for label, words in spec.items() for word in words]
    else:
        pairs = [(word, word) for word in spec]
    labels: dict[str, str] = {}
    for word, label in pairs:
        if labels.setdefault(str(word), str(label)) != str(label):
            raise QueryError(f"query word {word!r} is listed under {labels[word]!r} and {label!r}")
    if not labels:
        raise QueryError("no retrieval queries configured; list words under queries")
    return labels


def find_ground_truth(dataset_dir: str | Path, labels: str | Path | None = "auto") -> Path | None:
    """The ground-truth file to judge relevance by: ``labels`` itself when it is a path;
    ``auto``: ``ground_truth.jsonl`` of the raw folder the dataset was built from, if any;
    None: no labels (captions decide)."""
    if labels is None:
        return None
    if str(labels) != "auto":
        path = Path(labels).expanduser()
        if not path.is_file():
            raise QueryError(
                f"labels={path}: no such file; give the {GROUND_TRUTH} of "
                "`python -m data_pipeline.synthetic`, or labels=auto / labels=null"
            )
        return path
    report = Path(dataset_dir) / BUILD_REPORT
    try:
        raw_dir = Path(json.loads(report.read_text(encoding="utf-8"))["raw_dir"])
    except (OSError, ValueError, KeyError):
        return None
    path = raw_dir / GROUND_TRUTH
    return path if path.is_file() else None


def read_ground_truth(path: Path) -> dict[str, frozenset[str]]:
    """Post id → its labels (the motifs and colours drawn in the image) from ``path``."""
    labels = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                post = json.loads(line)
                labels[post["shortcode"]] = frozenset(post["motifs"]) | frozenset(post["colours"])
            except (ValueError, KeyError, TypeError) as err:
                raise QueryError(
                    f"{path}:{number} is not a ground-truth row ({err}); expected JSON with "
                    "shortcode, motifs and colours as `python -m data_pipeline.synthetic` writes"
                ) from err
    return labels


def post_labels(ground_truth: Path | None, ids: Sequence[str]) -> list[frozenset[str]] | None:
    """The labels of each post of ``ids`` (None without ground truth); posts the file does not
    list are an error, since relevance would silently be wrong."""
    if ground_truth is None:
        return None
    labels = read_ground_truth(ground_truth)
    missing = [post for post in ids if post not in labels]
    if missing:
        raise QueryError(
            f"{ground_truth} has no labels for {len(missing)} of {len(ids)} posts "
            f"(e.g. {missing[0]}); it belongs to another dataset: set labels=PATH or labels=null"
        )
    return [labels[post] for post in ids]


def retrieval_queries(
    spec: Mapping[str, Sequence[str]] | Sequence[str],
    text_model,
    captions: Sequence[str],
    labels: Sequence[frozenset[str]] | None = None,
    prepare_targets: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> RetrievalQueries:
    """The queries of ``spec`` that ``text_model`` knows every word of, over these posts.

    Args:
        spec: ``label → words`` or a list of words (see the module docstring).
        text_model: a fitted text model (``tokenizer``, ``knows``, ``transform``).
        captions: the split's captions, in dataset order.
        labels: each post's ground-truth labels; None: a post is relevant to a query when its
            tokenized caption holds every word of the query.
        prepare_targets: the training loss's map of text vectors into the space where its
            ``to_text_space`` puts images; None: the text model's vectors as they are.

    Raises ``QueryError`` when the text model knows none of the configured words.
    """
    word_labels = query_labels(spec)
    tokenize = text_model.tokenizer
    caption_words = None if labels is not None else [set(tokenize(c)) for c in captions]
    words, kept_labels, relevance, unknown = [], [], [], []
    for word, label in word_labels.items():
        tokens = set(tokenize(word))
        if not tokens or not all(text_model.knows(token) for token in tokens):
            unknown.append(word)
            continue
        words.append(word)
        kept_labels.append(label)
        if labels is not None:
            relevance.append([label in post for post in labels])
        else:
            relevance.append([tokens <= caption for caption in caption_words])
    if not words:
        raise QueryError(
            f"none of the query words {list(word_labels)} is in the text model's vocabulary; "
            "choose words that occur in the training captions"
        )
    vectors = np.asarray(text_model.transform(words), dtype=np.float32)
    if prepare_targets is not None:
        vectors = prepare_targets(torch.from_numpy(vectors)).numpy()
    relevance = np.array(relevance, dtype=bool).reshape(len(words), len(captions))
    return RetrievalQueries(words, kept_labels, vectors, relevance, labels is not None, unknown)
