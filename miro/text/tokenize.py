"""Caption cleaning and tokenizing for multilingual Instagram captions (en, es, ca, fr).

Follows the preprocessing of "Learning to Learn from Web Data" (Gomez et al., 2018): URLs and
@mentions go, ``#`` becomes a space so hashtags count as words, stopwords of every language in
the data and a project blacklist of platform noise are removed, short tokens are dropped. Two
additions for Instagram: a compound hashtag is split into the words it is made of when those
words are known (``#fundaciomiro`` → ``fundacio miro``), and emojis are dropped or become their
English names (``🌟`` → ``glowing star``).

Example::

    tokenize = CaptionTokenizer(blacklist=["instagram"])
    tokenize("Una estrella roja 🌟 #JoanMiro @fundaciomiro https://t.co/x")
    # ['estrella', 'roja', 'joanmiro']
    tokenize.learn_vocabulary(["joan miro pintó una estrella"])
    tokenize("Una estrella roja #JoanMiro")
    # ['estrella', 'roja', 'joan', 'miro']
"""

import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import emoji
from stop_words import get_stop_words

STOPWORD_LANGUAGES = {"en": "english", "es": "spanish", "ca": "catalan", "fr": "french"}
EMOJI_MODES = ("drop", "words")

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"@[\w.]+")
# Fitzpatrick skin-tone modifiers: named on their own by demojize ("medium skin tone"), noise.
_SKIN_TONE = re.compile("[\U0001f3fb-\U0001f3ff]")
# A run of letters, with the '#' before it when it is a hashtag: digits, punctuation,
# underscores and emojis separate words and are dropped.
_WORD = re.compile(r"(#?)([^\W\d_]+)")
# Hashtag pieces shorter than this are never used: one letter joins anything to anything.
_MIN_PIECE = 2


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


def segment(
    text: str, counts: dict[str, int], total: int, longest: int | None = None
) -> list[str] | None:
    """The most probable split of ``text`` into known words under a unigram model, or None.

    Dynamic programming over split points; a piece scores ``log(count / total)``, so fewer and
    more frequent words win (the model of Norvig's ``segment``). Pieces are at least two
    letters long; ``longest`` (the longest key of ``counts``) bounds the search.
    """
    longest = longest or max(map(len, counts), default=0)
    best = [0.0] + [-math.inf] * len(text)
    start_of = [0] * (len(text) + 1)
    log_total = math.log(total)
    for end in range(_MIN_PIECE, len(text) + 1):
        for start in range(max(0, end - longest), end - _MIN_PIECE + 1):
            count = counts.get(text[start:end])
            if count and best[start] > -math.inf:
                score = best[start] + math.log(count) - log_total
                if score > best[end]:
                    best[end], start_of[end] = score, start
    if best[-1] == -math.inf:
        return None
    pieces, end = [], len(text)
    while end > 0:
        pieces.append(text[start_of[end] : end])
        end = start_of[end]
    return pieces[::-1]


class CaptionTokenizer:
    """Turn a raw caption into a list of lowercase content words.

    Hashtags are split into known words by ``segment``: known are the words seen outside
    hashtags by ``learn_vocabulary`` (the text embedders call it on their training captions)
    and ``known_words``. A hashtag that is itself a known word, that is blacklisted as a whole,
    or that no split covers with known words stays one word. Without a vocabulary (as in
    ``data_pipeline.build``) every hashtag is one word.

    Args:
        languages: language codes whose stopwords are removed.
        min_length: shortest token kept, in characters (TextTopicNet kept tokens longer than 2).
        fold_accents: strip diacritics so ``miró`` and ``miro`` are one word.
        blacklist: words that carry no image content on Instagram (``instagram``, ``repost``...).
        split_hashtags: split compound hashtags into known words.
        emojis: ``drop`` them, or replace each by its English name's ``words`` (``emoji``
            package, CLDR names: ``🌙`` → ``crescent moon``).
        known_words: words known for hashtag splitting besides those the corpus shows.
    """

    def __init__(
        self,
        languages: Iterable[str] = tuple(STOPWORD_LANGUAGES),
        min_length: int = 3,
        fold_accents: bool = False,
        blacklist: Iterable[str] = (),
        split_hashtags: bool = True,
        emojis: str = "drop",
        known_words: Iterable[str] = (),
    ) -> None:
        if emojis not in EMOJI_MODES:
            raise ValueError(f"tokenizer.emojis={emojis!r}; choose among {list(EMOJI_MODES)}")
        self.languages = tuple(languages)
        self.min_length = min_length
        self.fold_accents = fold_accents
        self.blacklist = tuple(blacklist)
        self.split_hashtags = split_hashtags
        self.emojis = emojis
        self.known_words = tuple(known_words)
        removed = set().union(*(stopwords(language) for language in self.languages))
        removed.update(word.lower() for word in self.blacklist)
        self._removed = frozenset(self._normalize(word) for word in removed)
        self.vocabulary: dict[str, int] = {}
        self.set_vocabulary({})

    def __call__(self, caption: str) -> list[str]:
        words = []
        for is_hashtag, word in self._raw_words(caption):
            pieces = self.split_hashtag(word) if is_hashtag else [word]
            words.extend(piece for piece in pieces if self._keeps(piece))
        return words

    def split_hashtag(self, hashtag: str) -> list[str]:
        """The known words a normalized hashtag (no ``#``) is made of, or ``[hashtag]``."""
        if (
            not self.split_hashtags
            or hashtag in self._removed
            or hashtag in self._counts
            or not self._counts
        ):
            return [hashtag]
        if hashtag not in self._splits:
            pieces = segment(hashtag, self._counts, self._total, self._longest)
            self._splits[hashtag] = pieces or [hashtag]
        return self._splits[hashtag]

    def learn_vocabulary(self, captions: Iterable[str]) -> "CaptionTokenizer":
        """Count the words seen outside hashtags in ``captions``: the known words of splitting."""
        counts = Counter(
            word
            for caption in captions
            for is_hashtag, word in self._raw_words(caption)
            if not is_hashtag and len(word) >= _MIN_PIECE
        )
        self.set_vocabulary(dict(counts))
        return self

    def set_vocabulary(self, counts: dict[str, int]) -> None:
        """Use ``counts`` (word → occurrences outside hashtags) as the learned vocabulary."""
        self.vocabulary = dict(counts)
        merged = Counter(self.vocabulary)
        merged.update(self._normalize(word.lower()) for word in self.known_words)
        self._counts = {word: n for word, n in merged.items() if len(word) >= _MIN_PIECE}
        self._total = sum(self._counts.values())
        self._longest = max(map(len, self._counts), default=0)
        self._splits: dict[str, list[str]] = {}

    def save_vocabulary(self, path: Path) -> None:
        path.write_text(json.dumps(self.vocabulary, ensure_ascii=False, sort_keys=True))

    def load_vocabulary(self, path: Path) -> "CaptionTokenizer":
        """Read what ``save_vocabulary`` wrote; a missing file (an older model) leaves none."""
        if path.is_file():
            self.set_vocabulary(json.loads(path.read_text()))
        return self

    def params(self) -> dict:
        """Everything that changes the output, for cache keys (the learned vocabulary follows
        from the captions, which the cache key holds too)."""
        return {
            "languages": list(self.languages),
            "min_length": self.min_length,
            "fold_accents": self.fold_accents,
            "blacklist": sorted(self.blacklist),
            "split_hashtags": self.split_hashtags,
            "emojis": self.emojis,
            "known_words": sorted(self.known_words),
        }

    def _normalize(self, text: str) -> str:
        return fold_accents(text) if self.fold_accents else text

    def _keeps(self, word: str) -> bool:
        return len(word) >= self.min_length and word not in self._removed

    def _raw_words(self, caption: str) -> Iterator[tuple[bool, str]]:
        """``(is_hashtag, word)`` for each lowercased, normalized letter run of ``caption``."""
        text = _MENTION.sub(" ", _URL.sub(" ", caption))
        if self.emojis == "words":
            text = emoji.demojize(_SKIN_TONE.sub("", text), delimiters=(" ", " "))
        text = self._normalize(text.lower())
        for hash_sign, word in _WORD.findall(text):
            yield bool(hash_sign), word
