from miro.text.tokenize import CaptionTokenizer, fold_accents


def test_caption_noise_is_removed_and_hashtags_become_words():
    tokenize = CaptionTokenizer(blacklist=["joanmiro", "instagram"])
    caption = (
        "Una ESTRELLA roja 🌟 bajo la luna #JoanMiro #ocell @fundaciomiro https://t.co/x1 2024!"
    )
    assert tokenize(caption) == ["estrella", "roja", "luna", "ocell"]


def test_stopwords_of_all_four_languages_are_removed():
    tokenize = CaptionTokenizer()
    assert tokenize("the star and the moon") == ["star", "moon"]
    assert tokenize("una estrella con la luna") == ["estrella", "luna"]
    assert tokenize("l'estel i la lluna amb el sol") == ["estel", "lluna", "sol"]
    assert tokenize("une étoile avec la lune") == ["étoile", "lune"]


def test_only_noise_gives_no_words():
    tokenize = CaptionTokenizer(blacklist=["joanmiro", "miro", "art"])
    assert tokenize("🎨✨❤️ #joanmiro #miro #art @someone http://x.y/z") == []


def test_accent_folding_is_optional_and_applies_to_the_blacklist():
    assert fold_accents("Miró œil échelle") == "Miro œil echelle"
    assert CaptionTokenizer(blacklist=["miró"])("miró miro") == ["miro"]
    assert CaptionTokenizer(fold_accents=True, blacklist=["miró"])("miró miro échelle") == [
        "echelle"
    ]


def test_min_length_drops_short_tokens():
    assert CaptionTokenizer(languages=[], min_length=4)("sun moon eye star") == ["moon", "star"]


def test_each_languages_stopwords_only_go_when_that_language_is_listed():
    caption = "the una l'estel avec moon"
    assert CaptionTokenizer(languages=[])(caption) == ["the", "una", "estel", "avec", "moon"]
    assert CaptionTokenizer(languages=["en"])(caption) == ["una", "estel", "avec", "moon"]
    assert CaptionTokenizer(languages=["es"])(caption) == ["the", "estel", "avec", "moon"]
    assert CaptionTokenizer(languages=["fr"])(caption) == ["the", "una", "estel", "moon"]
    assert CaptionTokenizer(languages=["ca"])("nosaltres i la lluna") == ["lluna"]
    assert CaptionTokenizer(languages=["es"])("nosaltres i la lluna") == ["nosaltres", "lluna"]


def test_urls_and_mentions_go_with_their_dots_and_paths():
    tokenize = CaptionTokenizer(languages=[])
    caption = "sol @anna.lover www.fundaciomiro.cat/agenda https://t.co/AbC?x=luna lluna"
    assert tokenize(caption) == ["sol", "lluna"]


def test_compound_hashtags_split_into_words_the_corpus_shows():
    tokenize = CaptionTokenizer(languages=["ca"]).learn_vocabulary(
        ["la fundacio de Joan", "un quadre de miro", "la lluna"]
    )
    assert tokenize("#FundacioMiro") == ["fundacio", "miro"]
    # A known word stays whole; pieces that are stopwords go after the split.
    assert tokenize("#lluna #lallunademiro") == ["lluna", "lluna", "miro"]
    # No split covers it with known words: one word, as without a vocabulary.
    assert tokenize("#mirolandia") == ["mirolandia"]
    assert CaptionTokenizer(languages=["ca"])("#fundaciomiro") == ["fundaciomiro"]
    # Words seen only inside hashtags are not known words.
    assert tokenize.learn_vocabulary(["#fundacio #miro"])("#fundaciomiro") == ["fundaciomiro"]


def test_hashtag_splitting_prefers_fewer_frequent_words_and_can_be_turned_off():
    corpus = ["sun", "sunset", "sunset", "set", "beach"]
    tokenize = CaptionTokenizer(languages=[]).learn_vocabulary(corpus)
    assert tokenize("#sunsetbeach") == ["sunset", "beach"]
    assert CaptionTokenizer(known_words=["fundacio", "miro"])("#fundaciomiro") == [
        "fundacio",
        "miro",
    ]
    off = CaptionTokenizer(split_hashtags=False).learn_vocabulary(["fundacio miro"])
    assert off("#fundaciomiro") == ["fundaciomiro"]


def test_blacklisted_hashtag_goes_whole_and_is_not_split():
    tokenize = CaptionTokenizer(blacklist=["joanmiro"]).learn_vocabulary(["joan miro art"])
    assert tokenize("#joanmiro #JoanMiroArt") == ["joan", "miro", "art"]


def test_accents_folding_reaches_hashtag_splitting():
    corpus = ["fundació miró"]
    kept = CaptionTokenizer(languages=[]).learn_vocabulary(corpus)
    assert kept("#fundaciómiró #fundaciomiro") == ["fundació", "miró", "fundaciomiro"]
    folded = CaptionTokenizer(languages=[], fold_accents=True).learn_vocabulary(corpus)
    assert folded("#fundaciómiró #fundaciomiro") == ["fundacio", "miro"] * 2


def test_emojis_are_dropped_or_become_their_names():
    caption = "lluna 🌙 i estel ⭐️ 👍🏽"
    assert CaptionTokenizer()(caption) == ["lluna", "estel"]
    words = CaptionTokenizer(emojis="words")(caption)
    assert words == ["lluna", "crescent", "moon", "estel", "star", "thumbs"]


def test_a_saved_vocabulary_splits_the_same(tmp_path):
    tokenize = CaptionTokenizer().learn_vocabulary(["fundacio de miro"])
    tokenize.save_vocabulary(tmp_path / "vocabulary.json")
    loaded = CaptionTokenizer().load_vocabulary(tmp_path / "vocabulary.json")
    assert loaded("#fundaciomiro") == tokenize("#fundaciomiro") == ["fundacio", "miro"]
    assert loaded.params() == tokenize.params()
