"""Which posts the dataset keeps: the drop reasons, the caption checks and the user cap.

A caption check is any callable ``check(post) -> str | None``; the first reason returned drops
the post and is counted in the build report. They run before captions are language-checked and
images decoded, so cheap checks spare the expensive ones. The other stages (language, images,
prolific users, duplicates) live in ``data_pipeline.dataset`` with what they need.

Example::

    checks = default_checks(CaptionTokenizer(), min_words=3, blacklist_words=["giveaway"])
    first_drop_reason(post, checks)  # None, "no_caption", "too_few_words", ...
"""

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from data_pipeline.dedupe import EXACT_DUPLICATE, NEAR_DUPLICATE
from data_pipeline.images import IMAGE_TOO_LARGE, IMAGE_TOO_SMALL, IMAGE_UNREADABLE
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
_WORD = re.compile(r"\w+")


def has_caption(post: RawPost) -> str | None:
    """Drop posts whose caption is missing, empty or whitespace."""
    return None if post.caption and post.caption.strip() else NO_CAPTION


class MinWords:
    """Drop captions with fewer than ``min_words`` words after the project tokenizer.

    Args:
        tokenize: caption → words, e.g. ``miro.text.tokenize.CaptionTokenizer``; emojis,
            @mentions, stopwords and blacklisted hashtags (``#joanmiro``) count for nothing.
        min_words: fewest words a kept caption has.
    """

    def __init__(self, tokenize: Callable[[str], list[str]], min_words: int = 3) -> None:
        self.tokenize = tokenize
        self.min_words = min_words

    def __call__(self, post: RawPost) -> str | None:
        words = self.tokenize(post.caption or "")
        return None if len(words) >= self.min_words else TOO_FEW_WORDS


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
) -> list[PostCheck]:
    """The caption checks, in order (a blacklist left empty is no check)."""
    checks: list[PostCheck] = [has_caption, MinWords(tokenize, min_words)]
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
