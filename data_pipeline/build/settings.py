"""The build's settings: every key of ``conf/build.yaml`` but ``raw``, ``out`` and ``tokenizer``.

``python -m data_pipeline.build`` merges its config onto ``BuildSettings`` with
``OmegaConf.structured`` (``data_pipeline.build.__main__.read_settings``), so OmegaConf refuses a
key the dataclass lacks and a value it cannot convert to the field's type, naming the key;
``BuildSettings.check`` refuses values out of range. This module imports no config system.

Example::

    settings = BuildSettings(min_words=5, workers=0)
    settings.check()  # raises BuildSettingsError naming every key out of range
"""

from dataclasses import dataclass, field

from data_pipeline.build.dedupe import HASH_BITS
from data_pipeline.build.filters import PROLIFIC_POLICIES, WORD_COUNTS, WRITTEN
from data_pipeline.build.language import CONFUSERS, KEEP
from data_pipeline.images import DEFAULT_MAX_PIXELS


class BuildSettingsError(ValueError):
    """A build setting out of its range; the message names the key."""


@dataclass
class BuildSettings:
    """What a build keeps and how it caches images (``conf/build.yaml`` documents each key).

    Attributes:
        min_words: fewest words a kept caption has.
        word_count: how ``min_words`` counts: ``"written"``, the caption's words as written
            (hashtags are words, URLs and @mentions are not; InstaBarcelona's count), or
            ``"content"``, the words the tokenizer leaves after stopwords and its blacklist.
        languages: ISO 639-1 codes of the caption languages kept; None keeps every caption
            (and detects none).
        language_confusers: other languages the detector may answer (then the post is dropped).
        language_accuracy: lingua's ``"high"`` or ``"low"`` accuracy mode.
        blacklist_words: captions holding one of these words or hashtags are dropped.
        blacklist_users: posts of these accounts are dropped.
        max_posts_per_user: the user cap (InstaBarcelona: 20); None: no cap.
        prolific_users: ``"drop"`` every post of a user over the cap (as InstaBarcelona did) or
            ``"keep_first"`` ``max_posts_per_user`` of them, in arrival order.
        exact_duplicates: drop posts whose image equals a kept post's (same pixels).
        near_duplicate_distance: pHash bits a near duplicate may differ by; None: no check.
        near_duplicate_rms: thumbnail RMS (0-255) a near duplicate may differ by; None: pHash
            distance alone decides.
        splits: split name → fraction of posts, summing to 1; assigned by a hash of the id.
        image_short_side: short side of cached images in pixels (smaller ones are not upscaled).
        min_image_side: images with a shorter short side are dropped as ``image_too_small``.
        max_image_pixels: larger images are dropped as ``image_too_large`` (decompression bombs).
        jpeg_quality: quality of cached JPEGs.
        jpeg_draft: decode large JPEGs at a reduced DCT scale (2.5-3x faster, 44 dB).
        workers: processes decoding images; None: one per core; 0 or 1: this process.
        progress: show a progress bar.
    """

    min_words: int = 3
    word_count: str = WRITTEN
    languages: list[str] | None = field(default_factory=lambda: list(KEEP))
    language_confusers: list[str] = field(default_factory=lambda: list(CONFUSERS))
    language_accuracy: str = "high"
    blacklist_words: list[str] = field(default_factory=list)
    blacklist_users: list[str] = field(default_factory=list)
    max_posts_per_user: int | None = None
    prolific_users: str = "drop"
    exact_duplicates: bool = True
    near_duplicate_distance: int | None = 8
    near_duplicate_rms: float | None = 5.0
    splits: dict[str, float] = field(
        default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1}
    )
    image_short_side: int = 256
    min_image_side: int = 64
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    jpeg_quality: int = 90
    jpeg_draft: bool = True
    workers: int | None = None
    progress: bool = True

    def check(self) -> None:
        """Raise ``BuildSettingsError`` naming every setting out of its range.

        The split fractions and language codes are checked where they are used
        (``check_fractions``, ``LanguageDetector``).
        """
        problems = []
        if self.min_words < 0:
            problems.append(f"min_words must be >= 0, got {self.min_words}")
        if self.word_count not in WORD_COUNTS:
            problems.append(f"word_count must be one of {WORD_COUNTS}, got {self.word_count!r}")
        if self.max_posts_per_user is not None and self.max_posts_per_user < 1:
            problems.append(
                f"max_posts_per_user must be >= 1 or null (no cap), got {self.max_posts_per_user}"
            )
        if self.prolific_users not in PROLIFIC_POLICIES:
            problems.append(
                f"prolific_users must be one of {PROLIFIC_POLICIES}, got {self.prolific_users!r}"
            )
        distance = self.near_duplicate_distance
        if distance is not None and not 0 <= distance < HASH_BITS:
            problems.append(
                f"near_duplicate_distance must be in [0, {HASH_BITS}) or null, got {distance}"
            )
        if problems:
            raise BuildSettingsError("; ".join(problems))
