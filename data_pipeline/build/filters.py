"""Which posts the dataset keeps: the drop reasons, the caption checks and the user cap.

A caption check is any callable ``check(post) -> str | None``; the first reason returned drops
the post and is counted in the build report. They run before captions are language-checked and
images decoded, so cheap checks spare the expensive ones. The other stages (language, images,
prolific users, duplicates) live in ``data_pipeline.build.dataset`` with what they need.

Example::

    checks = default_checks(CaptionTokenizer(), min_words=3, blacklist_words=["giveaway"])
    first_drop_reason(post, checks)  # None, "no_caption", "too_few_words", ...
    written_words("molt bonic sol #miro https://t.co/x")  # ['molt', 'bonic', 'sol', 'miro']
"""

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from data_pipeline.build.dedupe import EXACT_DUPLICATE, NEAR_DUPLICATE
from data_pipeline.build.image_cache import IMAGE_TOO_SMALL
from data_pipeline.images import IMAGE_TOO_LARGE, IMAGE_UNREADABLE
from data_pipeline.raw import RawPost

PostCheck = Callable[[RawPost], str | None]

DUPLICATE_ID = "duplicate_id"
NO_CAPTION = "no_caption"
TOO_FEW_WORDS = "too_few_words"
BLACKLISTED_USER = "blacklisted_user"
BLACKLISTED_WORD = "blacklisted_word"
LANGUAGE = "wrong_language"
PROLIFIC_USER = "prolific_user"
# Every reason a build reports, zero or not, in pipeline order.
DROP_REASONS = (
    DUPLICATE_ID,
    NO_CAPTION,
    TOO_FEW_WORDS,
    BLACKLISTED_USER,
    BLACKLISTED_WORD,
    LANGUAGE,
    IMAGE_UNREADABLE,
    IMAGE_TOO_LARGE,
    IMAGE_TOO_SMALL,
    PROLIFIC_USER,
    EXACT_DUPLICATE,
    NEAR_DUPLICATE,
)
PROLIFIC_POLICIES = ("drop", "keep_first")
# How min_words counts: the caption's words as written (as the papers did), or the content
# words the text model will see (after stopwords and the tokenizer's blacklist).
WRITTEN, CONTENT = "written", "content"
WORD_COUNTS = (WRITTEN, CONTENT)
_WORD = re.compile(r"\w+")
# The tokenizer's URL and @mention patterns (miro.text.tokenize): neither is a word as written.
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"@[\w.]+")
# A run of letters; an apostrophe or hyphen inside it joins (l'ocell, après-midi: one word).
_WRITTEN_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def has_caption(post: RawPost) -> str | None:
    """Drop posts whose caption is missing, empty or whitespace."""
    return None if post.caption and post.caption.strip() else NO_CAPTION


def written_words(caption: str) -> list[str]:
    """The caption's words as written, counted as InstaBarcelona (Gomez et al.) counted them.

    Their filter replaced ``#`` by a space and split on whitespace: hashtags are words and
    stopwords count. Here URLs and @mentions are removed first, and a word is a run of letters
    (an inner apostrophe or hyphen joins: ``l'ocell`` is one word), so emojis, numbers and
    punctuation are no words, and a sentence of a script written without spaces (Japanese)
    is not one word.

    >>> written_words("M'encanta el sol! 🌞 #miro @fundaciomiro https://t.co/x1y2")
    ["M'encanta", 'el', 'sol', 'miro']
    """
    return _WRITTEN_WORD.findall(_MENTION.sub(" ", _URL.sub(" ", caption)))


class MinWords:
    """Drop captions with fewer than ``min_words`` words, counted ``written`` or ``content``.

    ``written`` (the papers' count, ``written_words``) keeps short captions that name what is
    shown, stopwords and all (``molt bonic sol #miro``); ``content`` counts what ``tokenize``
    leaves: emojis, @mentions, stopwords and blacklisted hashtags (``#joanmiro``) count for
    nothing, which drops such captions. experiments/build_filters measures both.

    Args:
        tokenize: caption → words, e.g. ``miro.text.tokenize.CaptionTokenizer``; used by
            ``content`` only.
        min_words: fewest words a kept caption has.
        word_count: ``"written"`` or ``"content"``.
    """

    def __init__(
        self,
        tokenize: Callable[[str], list[str]],
        min_words: int = 3,
        word_count: str = WRITTEN,
    ) -> None:
        if word_count not in WORD_COUNTS:
            raise ValueError(f"word_count must be one of {WORD_COUNTS}, got {word_count!r}")
        self.words = written_words if word_count == WRITTEN else tokenize
        self.min_words = min_words
        self.word_count = word_count

    def __call__(self, post: RawPost) -> str | None:
        words = self.words(post.caption or "")
        return None if len(words) >= self.min_words else TOO_FEW_WORDS

    def note(self, post: RawPost) -> str:
        """Why a dropped post fell short, for the report: ``"2 written words < 3"``."""
        return f"{len(self.words(post.caption or ''))} {self.word_count} words < {self.min_words}"


class BlacklistedUsers:
    """Drop posts of the given accounts (case-insensitive usernames)."""

    def __init__(self, users: Iterable[str]) -> None:
        self.users = frozenset(user.lower().lstrip("@") for user in users)

    def __call__(self, post: RawPost) -> str | None:
        owner = (post.owner or "").lower()
        return BLACKLISTED_USER if owner in self.users else None


class BlacklistedWords:
    """Drop captions containing any of the given words, as words or hashtags (case-insensitive).

    InstaBarcelona's "posts naming other cities" is this filter with a list of cities.
    """

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(word.lower().lstrip("#") for word in words)

    def __call__(self, post: RawPost) -> str | None:
        found = self.words.intersection(_WORD.findall((post.caption or "").lower()))
        return BLACKLISTED_WORD if found else None


def default_checks(
    tokenize: Callable[[str], list[str]],
    min_words: int = 3,
    blacklist_words: Iterable[str] = (),
    blacklist_users: Iterable[str] = (),
    word_count: str = WRITTEN,
) -> list[PostCheck]:
    """The caption checks, in order (a blacklist left empty is no check)."""
    checks: list[PostCheck] = [has_caption, MinWords(tokenize, min_words, word_count)]
    if blacklist_users:
        checks.append(BlacklistedUsers(blacklist_users))
    if blacklist_words:
        checks.append(BlacklistedWords(blacklist_words))
    return checks


def first_drop_reason(post: RawPost, checks: Sequence[PostCheck]) -> str | None:
    """The reason of the first check that fails, or None when the post passes them all."""
    for check in checks:
        reason = check(post)
        if reason is not None:
            return reason
    return None


def prolific_posts(
    posts: Sequence[RawPost], max_posts: int | None, policy: str = "drop"
) -> set[str]:
    """Keys of the posts the user cap drops, among ``posts`` in arrival order.

    InstaBarcelona dropped every post of a user with more than 20 (``policy="drop"``);
    ``"keep_first"`` keeps each user's first ``max_posts`` instead. Posts without an owner are
    never capped.
    """
    if policy not in PROLIFIC_POLICIES:
        raise ValueError(f"prolific_users must be one of {PROLIFIC_POLICIES}, got {policy!r}")
    if max_posts is None:
        return set()
    if policy == "drop":
        counts = Counter(post.owner for post in posts if post.owner)
        return {post.key for post in posts if post.owner and counts[post.owner] > max_posts}
    seen: Counter[str] = Counter()
    dropped = set()
    for post in posts:
        if post.owner:
            seen[post.owner] += 1
            if seen[post.owner] > max_posts:
                dropped.add(post.key)
    return dropped
