"""Caption cleaning and tokenizing for multilingual Instagram captions (en, es, ca, fr).

Follows the preprocessing of "Learning to Learn from Web Data" (Gomez et al., 2018): URLs and
@mentions go, ``#`` becomes a space so hashtags count as words, stopwords of every language in
the data and a project blacklist of platform noise are removed, short tokens are dropped.

Example::

    tokenize = CaptionTokenizer(blacklist=["instagram"])
    tokenize("Una estrella roja 🌟 #JoanMiro @fundaciomiro https://t.co/x")
    # ['estrella', 'roja', 'joanmiro']
"""

import re
import unicodedata
from collections.abc import Iterable
from functools import cache

from stop_words import get_stop_words

STOPWORD_LANGUAGES = {"en": "english", "es": "spanish", "ca": "catalan", "fr": "french"}

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"@[\w.]+")
# Runs of letters only: drops digits, punctuation, emojis and the '#' of hashtags.
_WORD = re.compile(r"[^\W\d_]+")


def fold_accents(text: str) -> str:
    """Remove diacritics: ``"Miró"`` → ``"Miro"``; ``"œil"`` stays (a ligature, not an accent)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@cache
def stopwords(language: str) -> frozenset[str]:
    """The stopword list of a language code among ``STOPWORD_LANGUAGES``."""
    if language not in STOPWORD_LANGUAGES:
        raise ValueError(
            f"no stopword list for language {language!r}; choose among {sorted(STOPWORD_LANGUAGES)}"
        )
    return frozenset(get_stop_words(STOPWORD_LANGUAGES[language]))


class CaptionTokenizer:
    """Turn a raw caption into a list of lowercase content words.

    Args:
        languages: language codes whose stopwords are removed.
        min_length: shortest token kept, in characters (TextTopicNet kept tokens longer than 2).
        fold_accents: strip diacritics so ``miró`` and ``miro`` are one word.
        blacklist: words that carry no image content on Instagram (``instagram``, ``repost``...).
    """

    def __init__(
        self,
        languages: Iterable[str] = tuple(STOPWORD_LANGUAGES),
        min_length: int = 3,
        fold_accents: bool = False,
        blacklist: Iterable[str] = (),
    ) -> None:
        self.languages = tuple(languages)
        self.min_length = min_length
        self.fold_accents = fold_accents
        self.blacklist = tuple(blacklist)
        removed = set().union(*(stopwords(language) for language in self.languages))
        removed.update(word.lower() for word in self.blacklist)
        self._removed = frozenset(self._normalize(word) for word in removed)

    def _normalize(self, text: str) -> str:
        return fold_accents(text) if self.fold_accents else text

    def __call__(self, caption: str) -> list[str]:
        text = self._normalize(caption.lower())
        text = _MENTION.sub(" ", _URL.sub(" ", text))
        return [
            word
            for word in _WORD.findall(text)
            if len(word) >= self.min_length and word not in self._removed
        ]

    def params(self) -> dict:
        """Everything that changes the output, for cache keys."""
        return {
            "languages": list(self.languages),
            "min_length": self.min_length,
            "fold_accents": self.fold_accents,
            "blacklist": sorted(self.blacklist),
        }
