"""The retrieval evaluation's queries: words in four languages, relevance by caption or label."""

import json

import numpy as np
import pytest
import torch

from miro.losses import SigmoidCrossEntropy
from miro.retrieval.queries import (
    QueryError,
    QueryWord,
    find_ground_truth,
    frequent_word_queries,
    post_labels,
    query_words,
    retrieval_queries,
)
from miro.text.lda import TopicEmbedder
from miro.text.tokenize import CaptionTokenizer

CAPTIONS = [
    "La estrella roja sobre la luna",
    "the red star and the moon",
    "un ocell blau i la lluna",
    "l'œil et l'oiseau rouge",
    "the blue bird sings",
]
SPEC = {
    "star": ["star", "estrella"],
    "bird": ["bird", "ocell", "oiseau"],
    "eye": ["œil"],
    "woman": ["woman", "mujer"],
}


@pytest.fixture(scope="module")
def text_model() -> TopicEmbedder:
    embedder = TopicEmbedder(CaptionTokenizer(), num_topics=3, no_below=1, no_above=1.0)
    return embedder.fit(CAPTIONS)


def test_query_words_of_a_language_mapping_a_label_mapping_a_list_and_a_conflict():
    spec = {"star": {"en": "star", "es": ["estrella", "astro"]}, "sun": {"es": "sol", "ca": "sol"}}
    words = {query.word: query for query in query_words(spec)}
    assert words["astro"] == QueryWord("astro", "star", ("es",))
    assert words["sol"].languages == ("es", "ca")  # one query, asked in two languages
    assert query_words(SPEC)[-1] == QueryWord("mujer", "woman", ())
    assert [q.label for q in query_words(["moon", "luna"])] == ["moon", "luna"]
    with pytest.raises(QueryError, match="'sol'"):
        query_words({"sun": ["sol"], "ground": ["sol"]})
    with pytest.raises(QueryError, match="no retrieval queries"):
        query_words([])


def test_queries_from_the_data_are_each_language_s_most_frequent_known_words(text_model):
    captions = ["the red star", "the red moon", "la luna roja", "la luna", "l'œil rouge"]
    spec = frequent_word_queries(text_model, captions, ["en", "en", "es", "es", "fr"], 1)
    assert spec == {"red": {"en": ["red"]}, "luna": {"es": ["luna"]}, "rouge": {"fr": ["rouge"]}}
    # Ties go by the word, whatever the order of the captions: the same queries every run.
    reordered = frequent_word_queries(text_model, captions[::-1], ["fr", "es", "es", "en", "en"], 2)
    assert reordered["moon"] == {"en": ["moon"]} and "star" not in reordered


def test_relevance_by_caption_in_each_language(text_model):
    queries = retrieval_queries(SPEC, text_model, CAPTIONS)
    relevant = dict(zip(queries.words, queries.relevance.tolist(), strict=True))
    assert relevant["star"] == [False, True, False, False, False]
    assert relevant["estrella"] == [True, False, False, False, False]
    assert relevant["ocell"] == [False, False, True, False, False]
    assert relevant["œil"] == [False, False, False, True, False]
    assert queries.labels[queries.words.index("oiseau")] == "bird"
    assert queries.unknown == ["woman", "mujer"] and not queries.by_label
    assert queries.vectors.shape == (len(queries.words), 3)
    expected = text_model.transform(queries.words)
    assert np.allclose(queries.vectors, expected, atol=1e-6)


def test_relevance_by_label_ignores_what_the_caption_says(text_model):
    labels = [frozenset({"star"}), frozenset(), frozenset({"bird"}), frozenset(), frozenset()]
    queries = retrieval_queries(
        SPEC, text_model, CAPTIONS, labels, SigmoidCrossEntropy().prepare_targets
    )
    relevant = dict(zip(queries.words, queries.relevance.tolist(), strict=True))
    assert relevant["star"] == relevant["estrella"] == [True, False, False, False, False]
    assert relevant["oiseau"] == [False, False, True, False, False]
    assert queries.by_label
    raw = torch.from_numpy(text_model.transform(queries.words))
    assert np.allclose(queries.vectors, SigmoidCrossEntropy().prepare_targets(raw).numpy())


def test_no_known_word_is_an_error_that_names_them(text_model):
    with pytest.raises(QueryError, match="'woman'"):
        retrieval_queries(["woman", "mujer"], text_model, CAPTIONS)


def test_ground_truth_is_found_beside_the_raw_posts_the_dataset_came_from(tmp_path):
    raw, dataset = tmp_path / "raw", tmp_path / "dataset"
    raw.mkdir()
    dataset.mkdir()
    assert find_ground_truth(dataset) is None  # no build report: captions decide
    (dataset / "report.json").write_text(json.dumps({"raw_dir": str(raw)}))
    assert find_ground_truth(dataset) is None  # a scraped folder has no ground truth
    rows = [{"shortcode": "a", "motifs": ["star"], "colours": ["red"]}]
    (raw / "ground_truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = find_ground_truth(dataset)
    assert found == raw / "ground_truth.jsonl"
    assert find_ground_truth(dataset, labels=None) is None
    assert post_labels(found, ["a"]) == [frozenset({"star", "red"})]
    with pytest.raises(QueryError, match="no labels for 1 of 2 posts"):
        post_labels(found, ["a", "b"])
    with pytest.raises(QueryError, match=r"nowhere\.jsonl"):
        find_ground_truth(dataset, labels=tmp_path / "nowhere.jsonl")
    (raw / "ground_truth.jsonl").write_text("not json\n")
    with pytest.raises(QueryError, match=r"ground_truth\.jsonl:1"):
        post_labels(found, ["a"])
