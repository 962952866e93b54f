"""A tiny caption language model: templated sentences about the motifs, plus Instagram noise.

A caption names some of the motifs in its picture with that language's synonyms (sometimes
misspelled) and sometimes the dominant colour, then adds what real posts carry: unrelated
small talk, emojis, @mentions, URLs and hashtags. An "unrelated" caption has only the noise.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from data_pipeline.synthetic.lexicon import (
    COMMON_HASHTAGS,
    EMOJIS,
    INSTITUTIONS,
    LEXICONS,
    URLS,
    Lexicon,
)
from data_pipeline.synthetic.motifs import Composition, DrawnMotif

LANGUAGES: tuple[str, ...] = tuple(LEXICONS)
_PHRASE = re.compile(r"^(.*[ '])?([^ ']+)$")
_WITH = {"en": "with", "es": "con", "ca": "amb", "fr": "avec"}


@dataclass(frozen=True)
class Caption:
    """A written caption and what it says about its picture."""

    text: str
    language: str
    mentioned_motifs: tuple[str, ...]

    @property
    def mentions_image(self) -> bool:
        """Whether the caption names at least one motif of the picture."""
        return bool(self.mentioned_motifs)


def motif_vocabulary() -> dict[str, frozenset[str]]:
    """Every lowercase noun, in any language, singular or plural, that names each motif.

    >>> "lluna" in motif_vocabulary()["moon"]
    True
    """
    words: dict[str, set[str]] = {}
    for lexicon in LEXICONS.values():
        for table in (lexicon.singular, lexicon.plural):
            for motif, phrases in table.items():
                words.setdefault(motif, set()).update(_split(p)[1].lower() for p in phrases)
    return {motif: frozenset(nouns) for motif, nouns in words.items()}


def _split(phrase: str) -> tuple[str, str]:
    """``"l'œil"`` -> ``("l'", "œil")``; ``"the red star"`` -> ``("the red ", "star")``."""
    match = _PHRASE.match(phrase)
    assert match is not None, phrase
    return match.group(1) or "", match.group(2)


def misspell(word: str, rng: np.random.Generator) -> str:
    """Drop one inner letter or swap two different neighbours, as hurried typists do."""
    swaps = [i for i in range(len(word) - 1) if word[i] != word[i + 1]]
    if len(word) >= 4 and (not swaps or rng.random() < 0.5):
        i = int(rng.integers(1, len(word) - 1))
        return word[:i] + word[i + 1 :]
    if not swaps:
        return word
    i = swaps[int(rng.integers(len(swaps)))]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _motif_phrase(
    lexicon: Lexicon,
    language: str,
    motif: DrawnMotif,
    rng: np.random.Generator,
    misspelling_rate: float,
    colour_rate: float,
) -> str:
    plural = lexicon.plural.get(motif.name)
    table = plural if plural and motif.count > 1 else lexicon.singular[motif.name]
    article, noun = _split(_choice(rng, table))
    if rng.random() < misspelling_rate:
        noun = misspell(noun, rng)
    if language == "en" and rng.random() < colour_rate:
        article += lexicon.colours[motif.colour] + " "  # English puts the colour before the noun
    return article + noun


def _sentence(text: str, rng: np.random.Generator) -> str:
    text = text[0].upper() + text[1:]
    return text if text[-1] in "!?." else text + _choice(rng, (".", "!", "", "..."))


def write_caption(
    rng: np.random.Generator,
    language: str,
    composition: Composition,
    *,
    mention_image: bool,
    owner: str,
    other_users: Sequence[str],
    scene_rate: float = 0.7,
    small_talk_rate: float = 0.5,
    misspelling_rate: float = 0.07,
    colour_rate: float = 0.35,
) -> Caption:
    """Write a caption in ``language`` for a picture showing ``composition``.

    With ``mention_image`` the caption names 1..all of the motifs (synonyms, plural when the
    motif is repeated, a ``misspelling_rate`` share of nouns misspelled) and, with probability
    ``colour_rate``, the dominant colour; each named motif brings a sentence of its world with
    probability ``scene_rate``; with probability ``small_talk_rate`` an unrelated sentence joins.
    Without ``mention_image`` the caption is small talk and noise only.
    ``owner`` and ``other_users`` feed links and @mentions. Returns NFC-normalised text.
    """
    lexicon = LEXICONS[language]
    sentences: list[str] = []
    mentioned: tuple[str, ...] = ()
    if mention_image:
        k = int(rng.integers(1, len(composition.motifs) + 1))
        chosen = [composition.motifs[i] for i in rng.permutation(len(composition.motifs))[:k]]
        phrases = [
            _motif_phrase(lexicon, language, m, rng, misspelling_rate, colour_rate / 2)
            for m in chosen
        ]
        args = dict(zip("abc", phrases, strict=False))
        templates = (lexicon.one_motif, lexicon.two_motifs, lexicon.three_motifs)[k - 1]
        sentences.append(_sentence(_choice(rng, templates).format(**args), rng))
        mentioned = tuple(sorted(m.name for m in chosen))
        for motif in chosen:
            if rng.random() < scene_rate:
                sentences.append(_sentence(_choice(rng, lexicon.scenes[motif.name]), rng))
        if rng.random() < colour_rate:
            colour = lexicon.colours[composition.dominant_colour]
            sentences.append(
                _sentence(_choice(rng, lexicon.colour_sentences).format(colour=colour), rng)
            )
    if not mention_image or rng.random() < small_talk_rate:
        count = 1 if mention_image else int(rng.integers(1, 3))
        for i in rng.choice(len(lexicon.unrelated), size=count, replace=False):
            position = 0 if rng.random() < 0.5 else len(sentences)
            sentences.insert(position, _sentence(lexicon.unrelated[int(i)], rng))
    if rng.random() < 0.6:
        i = int(rng.integers(len(sentences)))
        sentences[i] += " " + "".join(_choice(rng, EMOJIS) for _ in range(rng.integers(1, 4)))
    text = _choice(rng, (" ", "\n")).join(sentences)
    if rng.random() < 0.3:
        user = _choice(rng, INSTITUTIONS) if rng.random() < 0.6 else "@" + _choice(rng, other_users)
        text += f" {_WITH[language]} {user}" if rng.random() < 0.5 else f" {user}"
    if rng.random() < 0.12:
        text += "\n" + _choice(rng, (*URLS, f"https://linktr.ee/{owner}"))
    if rng.random() < 0.8:
        pool = tuple(dict.fromkeys((*COMMON_HASHTAGS, *lexicon.hashtags)))
        tags = [pool[int(i)] for i in rng.choice(len(pool), size=rng.integers(1, 7), replace=False)]
        text += _choice(rng, ("\n\n", "\n.\n.\n.\n", " ")) + " ".join(tags)
    return Caption(unicodedata.normalize("NFC", text), language, mentioned)
