"""The retrieval evaluation's queries: words in four languages, relevance by caption or label."""

import json

import numpy as np
import pytest
import torch

from miro.losses import SigmoidCrossEntropy
from miro.queries import (
    QueryError,
    find_ground_truth,
    post_labels,
    query_labels,
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


def test_query_labels_of_a_mapping_a_list_and_a_conflict():
    assert query_labels(SPEC)["oiseau"] == "bird"
    assert query_labels(["moon", "luna"]) == {"moon": "moon", "luna": "luna"}
    with pytest.raises(QueryError, match="'sol'"):
        query_labels({"sun": ["sol"], "ground": ["sol"]})
    with pytest.raises(QueryError, match="no retrieval queries"):
        query_labels([])


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
