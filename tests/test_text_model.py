import numpy as np

from miro.text.lda import TopicEmbedder
from miro.text.targets import fit_text_targets
from miro.text.tokenize import CaptionTokenizer

CAPTIONS = [
    "red star over the sea",
    "star red painting",
    "yellow moon and night",
    "moon night yellow sky",
    "blue bird flying",
    "bird blue wings",
] * 5


def make_embedder(**overrides) -> TopicEmbedder:
    params = {"num_topics": 3, "passes": 20, "no_below": 2, "seed": 0} | overrides
    return TopicEmbedder(CaptionTokenizer(languages=["en"]), **params)


def test_topics_separate_words_that_never_co_occur():
    embedder = make_embedder().fit(CAPTIONS)
    star, moon, bird = embedder.transform(["star", "moon", "bird"])
    assert star.shape == (3,)
    assert np.allclose(embedder.transform(CAPTIONS).sum(axis=1), 1.0, atol=1e-4)
    # Each word's topic distribution peaks on a different topic.
    assert len({int(star.argmax()), int(moon.argmax()), int(bird.argmax())}) == 3
    assert embedder.knows("star") and not embedder.knows("zebra")


def test_save_and_load_give_the_same_vectors(tmp_path):
    embedder = make_embedder().fit(CAPTIONS)
    embedder.save(tmp_path / "lda")
    loaded = TopicEmbedder.load(tmp_path / "lda")
    assert np.allclose(loaded.transform(CAPTIONS), embedder.transform(CAPTIONS))
    assert loaded.params() == embedder.params()


def test_targets_are_cached_by_what_produced_them(tmp_path):
    ids = [f"p{i}" for i in range(len(CAPTIONS))]
    splits = ["train"] * (len(CAPTIONS) - 6) + ["val"] * 6
    first = fit_text_targets(make_embedder(), ids, splits, CAPTIONS, tmp_path)
    again = fit_text_targets(make_embedder(), ids, splits, CAPTIONS, tmp_path)
    assert again.directory == first.directory
    assert np.array_equal(again.vectors, first.vectors)
    assert first.vectors.shape == (len(CAPTIONS), 3)
    other = fit_text_targets(make_embedder(num_topics=4), ids, splits, CAPTIONS, tmp_path)
    assert other.directory != first.directory
    assert other.vectors.shape == (len(CAPTIONS), 4)
    assert len(list(tmp_path.iterdir())) == 2
