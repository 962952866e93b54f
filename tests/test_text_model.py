import numpy as np
import pytest
from conftest import compose_config
from gensim.models import LdaMulticore
from hydra.utils import instantiate

from miro.text.lda import TopicEmbedder
from miro.text.targets import fit_text_targets
from miro.text.tokenize import CaptionTokenizer
from miro.text.word2vec import WordVectorEmbedder
from miro.text.words import WordCountEmbedder

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
    assert np.array_equal(loaded.transform(CAPTIONS), embedder.transform(CAPTIONS))
    assert loaded.params() == embedder.params()


def test_a_captions_topics_depend_on_it_alone():
    embedder = make_embedder().fit(CAPTIONS)
    alone = embedder.transform(["star red painting"])
    assert np.array_equal(embedder.transform(["star red painting"]), alone)
    assert np.array_equal(embedder.transform(CAPTIONS[:3])[1], alone[0])


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


def make_word2vec(**overrides) -> WordVectorEmbedder:
    params = {"vector_size": 8, "window": 3, "min_count": 2, "epochs": 5, "seed": 0} | overrides
    return WordVectorEmbedder(CaptionTokenizer(languages=["en"]), **params)


def test_word2vec_save_and_load_give_the_same_vectors(tmp_path):
    embedder = make_word2vec(pooling="tfidf", phrases=True, phrase_min_count=2).fit(CAPTIONS)
    embedder.save(tmp_path / "w2v")
    loaded = WordVectorEmbedder.load(tmp_path / "w2v")
    vectors = embedder.transform(CAPTIONS)
    assert vectors.shape == (len(CAPTIONS), 8) and vectors.dtype == np.float32
    assert np.array_equal(loaded.transform(CAPTIONS), vectors)
    assert loaded.params() == embedder.params()
    assert loaded.knows("star") and not loaded.knows("zebra")


def test_word2vec_caption_is_the_mean_of_its_word_vectors():
    embedder = make_word2vec().fit(CAPTIONS)
    star, red, caption = embedder.transform(["star", "red", "a red star, and a zebra"])
    assert np.allclose(caption, (star + red) / 2, atol=1e-6)


def test_tfidf_pooling_weighs_rare_words_more_than_mean_pooling():
    # "sky" is in every caption, "kite" in two of them.
    corpus = [f"sky {word} blue" for word in ["cloud", "sun", "rain", "wind"] * 5] + [
        "sky kite",
        "kite sky high",
    ]
    mean = make_word2vec().fit(corpus)
    tfidf = make_word2vec(pooling="tfidf").fit(corpus)
    sky, kite = tfidf.transform(["sky", "kite"])
    assert np.allclose([sky, kite], mean.transform(["sky", "kite"]))  # the same word vectors
    mixed_mean, mixed_tfidf = mean.transform(["sky kite"])[0], tfidf.transform(["sky kite"])[0]
    # The pooled vector is sky + w (kite - sky): w is 1/2 for the mean, more for TF-IDF.
    direction = kite - sky
    weight = lambda pooled: (pooled - sky) @ direction / (direction @ direction)  # noqa: E731
    assert weight(mixed_mean) == pytest.approx(0.5, abs=1e-5)
    assert weight(mixed_tfidf) > 0.6


def test_phrases_join_a_frequent_bigram():
    corpus = [f"ice cream {word}" for word in ["cone", "sun", "beach", "kid", "shop"] * 4]
    corpus += [f"{word} red" for word in ["cone", "sun", "beach", "kid", "shop", "car"] * 2]
    joined = make_word2vec(phrases=True, phrase_min_count=2, phrase_threshold=0.5).fit(corpus)
    assert joined.words("ice cream cone") == ["ice_cream", "cone"]
    assert joined.words("cream cone") == ["cream", "cone"]  # seen 4 times: scores under 0.5
    assert joined.knows("ice_cream") and not joined.knows("ice")
    assert joined.words("red cone") == ["red", "cone"]
    plain = make_word2vec().fit(corpus)
    assert plain.words("ice cream cone") == ["ice", "cream", "cone"]
    assert not plain.knows("ice_cream")


@pytest.mark.parametrize("make", [make_embedder, make_word2vec])
def test_a_caption_with_no_known_word_is_the_zero_vector(make):
    embedder = make().fit(CAPTIONS)
    vectors = embedder.transform(["zebra xylophone", "", "the and", "star zebra"])
    assert not vectors[:3].any()
    assert np.allclose(vectors[3], embedder.transform(["star"])[0])


def test_word2vec_learns_the_hashtag_vocabulary_of_its_captions(tmp_path):
    captions = [*CAPTIONS, "#redstar"]
    embedder = make_word2vec().fit(captions)
    assert embedder.tokenizer("#bluebird #zzz") == ["blue", "bird", "zzz"]
    embedder.save(tmp_path / "w2v")
    assert WordVectorEmbedder.load(tmp_path / "w2v").tokenizer("#bluebird") == ["blue", "bird"]


def test_configs_reach_gensim(tmp_path):
    lda_cfg = compose_config(
        "train",
        [
            "text=lda",
            "text.num_topics=3",
            "text.passes=2",
            "text.iterations=7",
            "text.chunksize=9",
            "text.no_below=2",
            "text.no_above=0.3",
            "text.keep_n=2",
            "text.workers=2",
        ],
        tmp_path,
    )
    lda = instantiate(lda_cfg.text).fit(CAPTIONS)
    assert isinstance(lda.lda, LdaMulticore) and lda.lda.workers == 2
    assert (lda.lda.num_topics, lda.lda.passes, lda.lda.iterations) == (3, 2, 7)
    assert lda.lda.chunksize == 9
    # sky, flying and wings are in 5/30 captions; red, star, moon... in 10/30 > no_above.
    assert len(lda.dictionary) == 2
    assert set(lda.dictionary.token2id) < {"sky", "flying", "wings"}

    overrides = ["text=word2vec", "text.num_topics=6", "text.window=2", "text.min_count=3"]
    w2v_cfg = compose_config("train", [*overrides, "text.epochs=3", "text.pooling=tfidf"], tmp_path)
    assert w2v_cfg.model.embed_dim == 6
    w2v = instantiate(w2v_cfg.text).fit(CAPTIONS)
    assert (w2v.dim, w2v.vectors.vector_size, w2v.window, w2v.pooling) == (6, 6, 2, "tfidf")
    assert w2v.tokenizer.params()["blacklist"]  # the project tokenizer config
    assert instantiate(compose_config("train", ["text=word2vec"], tmp_path).text).dim == 400


def test_word2vec_targets_are_cached_and_reused(tmp_path, monkeypatch):
    ids = [f"p{i}" for i in range(len(CAPTIONS))]
    splits = ["train"] * (len(CAPTIONS) - 6) + ["val"] * 6
    first = fit_text_targets(make_word2vec(), ids, splits, CAPTIONS, tmp_path)
    assert isinstance(first.embedder, WordVectorEmbedder)
    monkeypatch.setattr(WordVectorEmbedder, "fit", lambda *_: pytest.fail("refitted"))
    again = fit_text_targets(make_word2vec(), ids, splits, CAPTIONS, tmp_path)
    assert again.directory == first.directory
    assert np.array_equal(again.vectors, first.vectors)
    monkeypatch.undo()
    other = fit_text_targets(make_word2vec(pooling="tfidf"), ids, splits, CAPTIONS, tmp_path)
    assert other.directory != first.directory


def test_describe_lists_topics_and_nearest_words():
    topics = make_embedder().fit(CAPTIONS).describe(n=4)
    assert topics.columns == ["topic", "top words"]
    assert [row[0] for row in topics.rows] == [0, 1, 2]
    assert any("star" in row[1].split() for row in topics.rows)
    assert all(len(row[1].split()) == 4 for row in topics.rows)
    assert "LDA topics" in str(topics)

    embedder = make_word2vec().fit(CAPTIONS)
    nearest = embedder.describe(n=3, probes=["star", "zebra"])
    assert nearest.columns == ["word", "nearest words"]
    assert nearest.rows[0][0] == "star" and nearest.rows[0][1].count("(") == 3
    assert "star" not in nearest.rows[0][1].split()
    assert nearest.rows[1] == ["zebra", "(not in the vocabulary)"]
    assert len(embedder.describe().rows) == 10  # the most frequent words by default


def test_word_counts_keep_the_frequent_words_of_every_language(tmp_path):
    captions = ["la estrella roja", "the red star", "l'estel vermell", "the red star"] * 3
    embedder = WordCountEmbedder(CaptionTokenizer(), vocabulary_size=8, no_below=2, no_above=1.0)
    vectors = embedder.fit(captions).transform(["red star red", "estrella", "zebra"])
    assert vectors.shape == (3, 8) and vectors.dtype == np.float32
    red, star = (embedder.dictionary.token2id[w] for w in ("red", "star"))
    assert vectors[0, red] == 2 and vectors[0, star] == 1 and vectors[0].sum() == 3
    assert vectors[1].sum() == 1 and not vectors[2].any()  # an unknown word: the zero vector
    assert embedder.knows("estel") and not embedder.knows("zebra")
    assert embedder.word(star) == "star"
    embedder.save(tmp_path / "words")
    loaded = WordCountEmbedder.load(tmp_path / "words")
    assert np.array_equal(loaded.transform(captions), embedder.transform(captions))
    assert loaded.describe(probes=["red"]).rows == [["red", 6]]


def test_the_vocabulary_is_capped_at_the_most_frequent_words():
    captions = ["star moon"] * 5 + ["star bird"] * 3 + ["star sun"] * 2
    embedder = WordCountEmbedder(CaptionTokenizer(), vocabulary_size=2, no_below=1, no_above=1.0)
    embedder.fit(captions)
    assert sorted(embedder.dictionary.token2id) == ["moon", "star"]
    assert embedder.transform(["sun bird"]).shape == (1, 2)
