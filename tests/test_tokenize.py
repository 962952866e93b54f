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
