"""Which posts the dataset keeps: an ordered list of small checks, each a drop reason or None.

A check is any callable ``check(post) -> str | None``; the first reason returned drops the post
and is counted in the build report. Cheap caption checks run before images are decoded. To add a
filter (language, prolific users...), write one function or small class here and add it to
``default_checks``.

Example::

    checks = default_checks(CaptionTokenizer(), min_words=3)
    first_drop_reason(post, checks)  # None, "no_caption" or "too_few_words"
"""

from collections.abc import Callable, Sequence

from data_pipeline.raw import RawPost

PostCheck = Callable[[RawPost], str | None]

# Reasons every build reports, zero or not, in pipeline order (checks may add their own).
DUPLICATE_ID = "duplicate_id"
NO_CAPTION = "no_caption"
TOO_FEW_WORDS = "too_few_words"
IMAGE_UNREADABLE = "image_unreadable"
DROP_REASONS = (DUPLICATE_ID, NO_CAPTION, TOO_FEW_WORDS, IMAGE_UNREADABLE)


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


def default_checks(tokenize: Callable[[str], list[str]], min_words: int = 3) -> list[PostCheck]:
    """The checks run before images are decoded, in order."""
    return [has_caption, MinWords(tokenize, min_words)]


def first_drop_reason(post: RawPost, checks: Sequence[PostCheck]) -> str | None:
    """The reason of the first check that fails, or None when the post passes them all."""
    for check in checks:
        reason = check(post)
        if reason is not None:
            return reason
    return None
