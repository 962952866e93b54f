"""The text queries of the retrieval evaluation, and the held-out posts each one should find.

The protocol of "Learning to Learn from Web Data" (Gomez et al., 2017): each query word ranks
the held-out images by cosine to its text vector; a post is relevant when its caption holds the
word, or, where ground-truth labels exist (the synthetic set), when its labels hold the query's
label. Queries are configured as ``label → {language: words}`` so one concept is asked in every
language of the data (``star: {en: star, es: estrella, ca: estel, fr: étoile}``) and scores can
be read per query language; ``label → [words]`` leaves the languages unsaid, and a plain list
makes each word its own label.

Example::

    spec = {"star": {"en": "star", "es": "estrella"}, "red": ["red", "rojo"]}
    labels = read_ground_truth(find_ground_truth("data/demo/dataset"))   # or None: captions
    queries = retrieval_queries(spec, text_model, captions, [labels[i] for i in ids])
    queries.words, queries.vectors, queries.relevance   # (Q,), (Q, D), (Q, N)
"""

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from data_pipeline.manifest import REPORT_FILE

GROUND_TRUTH = "ground_truth.jsonl"  # written by `python -m data_pipeline.synthetic`


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
    languages: list[tuple[str, ...]] = field(default_factory=list)  # each word's languages


@dataclass(frozen=True)
class QueryWord:
    """One query word, the concept it asks for, and the languages it is a word of (empty when
    the configuration does not say)."""

    word: str
    label: str
    languages: tuple[str, ...] = ()


QuerySpec = Mapping[str, Sequence[str] | Mapping[str, str | Sequence[str]]] | Sequence[str]


def query_words(spec: QuerySpec) -> list[QueryWord]:
    """The words of ``label → {language: words}``, ``label → [words]`` or a list (each word its
    own label), in order; a word listed in several languages of one label is one query."""
    if not isinstance(spec, Mapping):
        spec = {word: [word] for word in spec}
    found: dict[str, QueryWord] = {}
    for label, words in spec.items():
        by_language = words.items() if isinstance(words, Mapping) else [("", words)]
        for language, entries in by_language:
            for word in [entries] if isinstance(entries, str) else entries:
                word, label, language = str(word), str(label), str(language)
                known = found.setdefault(word, QueryWord(word, label))
                if known.label != label:
                    raise QueryError(
                        f"query word {word!r} is listed under {known.label!r} and {label!r}"
                    )
                if language and language not in known.languages:
                    found[word] = QueryWord(word, label, (*known.languages, language))
    if not found:
        raise QueryError("no retrieval queries configured; list words under queries")
    return list(found.values())


def frequent_word_queries(
    text_model, captions: Sequence[str], languages: Sequence[str], per_language: int = 5
) -> dict[str, dict[str, list[str]]]:
    """Queries taken from the data, for text models that know none of the configured words:
    the ``per_language`` words the text model knows that most captions of each language hold,
    as a ``word → {language: [word]}`` spec (judged by captions)."""
    counts: dict[str, Counter] = {}
    for caption, language in zip(captions, languages, strict=True):
        known = {word for word in text_model.tokenizer(caption) if text_model.knows(word)}
        counts.setdefault(language, Counter()).update(known)
    spec: dict[str, dict[str, list[str]]] = {}
    for language, counter in sorted(counts.items()):
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))  # ties: by word
        for word, _ in ranked[:per_language]:
            spec.setdefault(word, {})[language] = [word]
    return spec


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
    report = Path(dataset_dir) / REPORT_FILE
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
    spec: QuerySpec,
    text_model,
    captions: Sequence[str],
    labels: Sequence[frozenset[str]] | None = None,
    prepare_targets: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> RetrievalQueries:
    """The queries of ``spec`` that ``text_model`` knows every word of, over these posts.

    Args:
        spec: ``label → {language: words}``, ``label → [words]`` or a list of words (see the
            module docstring).
        text_model: a fitted text model (``tokenizer``, ``knows``, ``transform``).
        captions: the split's captions, in dataset order.
        labels: each post's ground-truth labels; None: a post is relevant to a query when its
            tokenized caption holds every word of the query.
        prepare_targets: the training loss's map of text vectors into the space where its
            ``to_text_space`` puts images; None: the text model's vectors as they are.

    Raises ``QueryError`` when the text model knows none of the configured words.
    """
    configured = query_words(spec)
    tokenize = text_model.tokenizer
    caption_words = None if labels is not None else [set(tokenize(c)) for c in captions]
    kept, relevance, unknown = [], [], []
    for query in configured:
        tokens = set(tokenize(query.word))
        if not tokens or not all(text_model.knows(token) for token in tokens):
            unknown.append(query.word)
            continue
        kept.append(query)
        if labels is not None:
            relevance.append([query.label in post for post in labels])
        else:
            relevance.append([tokens <= caption for caption in caption_words])
    if not kept:
        raise QueryError(
            f"none of the query words {[q.word for q in configured]} is in the text model's "
            "vocabulary; choose words that occur in the training captions"
        )
    words = [query.word for query in kept]
    vectors = np.asarray(text_model.transform(words), dtype=np.float32)
    if prepare_targets is not None:
        vectors = prepare_targets(torch.from_numpy(vectors)).numpy()
    relevance = np.array(relevance, dtype=bool).reshape(len(words), len(captions))
    return RetrievalQueries(
        words,
        [query.label for query in kept],
        vectors,
        relevance,
        labels is not None,
        unknown,
        [query.languages for query in kept],
    )
