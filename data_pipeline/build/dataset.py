"""Build a dataset dir from raw instaloader posts: filter, cache images, split, write manifest.

The plain-function form of ``python -m data_pipeline.build``. Posts go through the stages in
arrival order, cheap ones first; each drop is counted by reason, never a crash:

1. the same post id under two folders; caption checks (``no_caption``, ``too_few_words``
   counted ``word_count``: as written or content words, blacklisted users and words);
2. caption language (lingua, ``data_pipeline.build.language``);
3. the image: decodes fully, not a decompression bomb, short side large enough;
4. prolific users (InstaBarcelona: more than 20 posts);
5. exact and near duplicates of a post kept before (``data_pipeline.build.dedupe``).

Incremental: ``DATASET/build_state.sqlite`` (``data_pipeline.build.state``) keeps each post as
read, its language, its cached image and its duplicate decision. A re-run reads, detects and
decodes only new or changed posts; old posts come first in arrival order, so a newer copy of a
kept post is the one dropped. The caption checks are cheap and none of their decisions is
stored: they re-run on every post, so a changed ``min_words``, ``word_count`` or blacklist
re-decides them all, and a post they now let through is detected, cached and deduplicated as a new
one. Duplicate decisions of the unchanged prefix of that order are reused as they are; from the
first post whose inputs changed on (usually: the new posts) they are recomputed. Splits are a
hash of the post id, so no post ever changes split. One stage looks at all posts at once: with
``prolific_users="drop"`` an old post is dropped when its owner passes ``max_posts_per_user``
with new posts (``keep_first`` never drops an old post).

Example::

    from miro.text.tokenize import CaptionTokenizer

    report = build_dataset("data/raw", "data/dataset", CaptionTokenizer(), workers=2)
    print(report.table())
"""

import resource
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from data_pipeline.build.dedupe import DuplicateFilter, thumbnail
from data_pipeline.build.filters import (
    DROP_REASONS,
    DUPLICATE_ID,
    LANGUAGE,
    PROLIFIC_USER,
    TOO_FEW_WORDS,
    MinWords,
    PostCheck,
    default_checks,
    first_drop_reason,
    prolific_posts,
)
from data_pipeline.build.image_cache import (
    CachedImage,
    ImageDrop,
    ResizeSpec,
    cache_images,
    signature_view,
)
from data_pipeline.build.language import LanguageDetector
from data_pipeline.build.settings import BuildSettings
from data_pipeline.build.splits import assign_split, check_fractions
from data_pipeline.build.state import BuildState, PostState
from data_pipeline.manifest import BuildReport, ManifestRow, write_manifest, write_report
from data_pipeline.raw import RawPost, read_posts

KEPT = "kept"


def build_dataset(
    raw_dir: str | Path,
    out_dir: str | Path,
    tokenizer: Callable[[str], list[str]],
    settings: BuildSettings | None = None,
    *,
    checks: Sequence[PostCheck] | None = None,
    **changes: Any,
) -> BuildReport:
    """Read every post under ``raw_dir`` and write (or update) the dataset in ``out_dir``.

    Args:
        raw_dir: a folder in instaloader's layout, searched recursively.
        out_dir: the dataset dir; gets ``manifest.parquet``, ``report.json``, ``images/`` and
            ``build_state.sqlite``.
        tokenizer: caption → content words (``CaptionTokenizer``), for
            ``word_count="content"``.
        settings: what to keep and how to cache images; default ``BuildSettings()``.
        checks: caption checks run first, in order; default ``default_checks`` of the settings.
        changes: settings to change from ``settings``, by name (``workers=0``); an unknown name
            raises ``TypeError``.

    Returns:
        The counts, also written to ``out_dir/report.json``.

    Raises:
        RawFolderError: ``raw_dir`` is missing or holds no posts.
        SplitFractionsError: the split fractions are negative or do not sum to 1.
        BuildSettingsError, LanguageSettingsError: a setting out of range, named in the message.
    """
    timings: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    settings = replace(settings or BuildSettings(), **changes)
    check_fractions(settings.splits)
    settings.check()
    detector = (
        LanguageDetector(
            settings.languages, settings.language_confusers, settings.language_accuracy
        )
        if settings.languages
        else None
    )
    spec = ResizeSpec(
        settings.image_short_side,
        settings.jpeg_quality,
        settings.max_image_pixels,
        settings.min_image_side,
        settings.jpeg_draft,
    )
    if checks is None:
        checks = default_checks(
            tokenizer,
            settings.min_words,
            settings.blacklist_words,
            settings.blacklist_users,
            settings.word_count,
        )
    raw_dir, out_dir = (Path(path).expanduser().resolve() for path in (raw_dir, out_dir))

    with _timed(timings, "read"):
        state = BuildState.load(out_dir, raw_dir)
        reuse = {key: row.post for key, row in state.posts.items()}
        posts, read = read_posts(raw_dir, reuse)
        order, vanished = _arrival_order(posts, state)
        reasons = _caption_reasons(order, checks)
    with _timed(timings, "language"):
        detected = _detect_languages(order, reasons, detector)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _timed(timings, "images"):
        processed = _cache_post_images(
            order, reasons, out_dir, spec, settings.workers, settings.progress
        )
    with _timed(timings, "users_and_duplicates"):
        survivors = [row.post for row in order if reasons[row.post.key] is None]
        capped = prolific_posts(survivors, settings.max_posts_per_user, settings.prolific_users)
        for key in capped:
            reasons[key] = PROLIFIC_USER
        duplicates = DuplicateFilter(
            exact=settings.exact_duplicates,
            max_distance=settings.near_duplicate_distance,
            max_rms=settings.near_duplicate_rms,
            thumbnail=_thumbnails(state, out_dir),
        )
        dedupe_key = (
            f"{settings.exact_duplicates}:{settings.near_duplicate_distance}:"
            f"{settings.near_duplicate_rms}:{spec.outcome_key()}"
        )
        _decide_duplicates(order, reasons, duplicates, dedupe_key, reuse=not vanished)

    report = BuildReport(
        raw_dir=str(raw_dir),
        dataset_dir=str(out_dir),
        seen=len(order),
        dropped=dict.fromkeys(DROP_REASONS, 0),
        splits=dict.fromkeys(settings.splits, 0),
        work={"posts_read": read, "captions_detected": detected, "images_processed": processed},
        timings=timings,
    )
    rows = []
    for row in order:
        post, reason = row.post, reasons[row.post.key]
        if reason is not None:
            report.drop(reason, post.stem, _note(row, reason, duplicates, state, checks))
            continue
        assert isinstance(row.image, CachedImage)
        split = assign_split(post.id, settings.splits)
        report.splits[split] += 1
        rows.append(_manifest_row(post, split, row.image, row.language))
    report.kept = len(rows)
    report.languages = dict(Counter(row.language or "unknown" for row in rows).most_common())
    with _timed(timings, "write"):
        write_manifest(rows, out_dir)
        state.save()
    report.seconds = round(time.perf_counter() - started, 3)
    write_report(report, out_dir)
    return report


def _manifest_row(
    post: RawPost, split: str, image: CachedImage, language: str | None
) -> ManifestRow:
    """A kept post as its manifest row."""
    return ManifestRow(
        id=post.id,
        split=split,
        caption=post.caption,
        language=language,
        owner=post.owner,
        date=post.date,
        hashtags=list(post.hashtags),
        image=image.path,
        source=str(image.source),
        width=image.width,
        height=image.height,
    )


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the image workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@contextmanager
def _timed(timings: dict[str, dict[str, float]], stage: str) -> Iterator[None]:
    """Record a stage's wall and CPU seconds: on a busy machine CPU says what it costs."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    yield
    timings[stage] = {
        "wall": round(time.perf_counter() - wall, 3),
        "cpu": round(_cpu_seconds() - cpu, 3),
    }


def _note(
    row: PostState,
    reason: str,
    duplicates: DuplicateFilter,
    state: BuildState,
    checks: Sequence[PostCheck],
) -> str:
    """What a report example says beside the post's stem."""
    if reason == LANGUAGE:
        return f"detected {row.language or 'nothing'}"
    if reason == TOO_FEW_WORDS:
        counter = next((check for check in checks if isinstance(check, MinWords)), None)
        return counter.note(row.post) if counter else ""
    copy_of = duplicates.copy_of.get(row.post.key)
    return f"copy of {state.posts[copy_of].post.stem}" if copy_of else ""


def _arrival_order(posts: list[RawPost], state: BuildState) -> tuple[list[PostState], bool]:
    """Every post's state in arrival order, and whether posts of earlier builds vanished.

    Posts of earlier builds keep their place; a changed post keeps it too, with everything
    derived from its files forgotten; new posts follow, oldest first.
    """
    current = {post.key: post for post in posts}
    vanished = state.posts.keys() - current.keys()
    for key in vanished:
        del state.posts[key]
    new = []
    for post in posts:
        known = state.posts.get(post.key)
        if known is None:
            new.append(post)
        elif known.post.fingerprint != post.fingerprint:
            state.posts[post.key] = PostState(post, known.seq)
    earliest = datetime.min.replace(tzinfo=UTC)
    new.sort(key=lambda post: (post.date or earliest, post.key))
    for seq, post in enumerate(new, start=state.next_seq()):
        state.posts[post.key] = PostState(post, seq)
    return sorted(state.posts.values(), key=lambda row: row.seq), bool(vanished)


def _caption_reasons(order: list[PostState], checks: Sequence[PostCheck]) -> dict[str, str | None]:
    """Stage 1: a post id seen before in arrival order, then the caption checks."""
    reasons: dict[str, str | None] = {}
    seen_ids: set[str] = set()
    for row in order:
        post = row.post
        # The same post saved under two hashtag folders is one post.
        reasons[post.key] = DUPLICATE_ID if post.id in seen_ids else first_drop_reason(post, checks)
        seen_ids.add(post.id)
    return reasons


def _detect_languages(
    order: list[PostState], reasons: dict[str, str | None], detector: LanguageDetector | None
) -> int:
    """Stage 2: detect the captions not detected yet by this detector; returns how many."""
    if detector is None:
        for row in order:
            row.language, row.language_key = None, None
        return 0
    alive = [row for row in order if reasons[row.post.key] is None]
    todo = [row for row in alive if row.language_key != detector.key]
    for row, language in zip(
        todo, detector.detect([row.post.caption or "" for row in todo]), strict=True
    ):
        row.language, row.language_key = language, detector.key
    for row in alive:
        if row.language not in detector.keep:
            reasons[row.post.key] = LANGUAGE
    return len(todo)


def _cache_post_images(
    order: list[PostState],
    reasons: dict[str, str | None],
    out_dir: Path,
    spec: ResizeSpec,
    workers: int | None,
    progress: bool,
) -> int:
    """Stage 3: cache the images not cached yet under ``spec``; returns how many were."""
    key = spec.outcome_key()
    alive = [row for row in order if reasons[row.post.key] is None]
    todo = [
        row
        for row in alive
        if row.image_key != key
        or (isinstance(row.image, CachedImage) and not (out_dir / row.image.path).is_file())
    ]
    results = cache_images([row.post.images for row in todo], out_dir, spec, workers, progress)
    for row, image in zip(todo, results, strict=True):
        row.image, row.image_key = image, key
    for row in alive:
        if isinstance(row.image, ImageDrop):
            reasons[row.post.key] = row.image.reason
    return len(todo)


def _thumbnails(state: BuildState, out_dir: Path) -> Callable[[str], np.ndarray]:
    @cache
    def load(key: str) -> np.ndarray:
        image = state.posts[key].image
        assert isinstance(image, CachedImage)
        return thumbnail(signature_view(out_dir / image.path))

    return load


def _decide_duplicates(
    order: list[PostState],
    reasons: dict[str, str | None],
    duplicates: DuplicateFilter,
    dedupe_key: str,
    reuse: bool,
) -> None:
    """Stage 5: first copy wins, in arrival order.

    Stored decisions are reused while every post so far is as the last build left it: decided
    under the same settings and reaching this stage as it did then.
    """
    for row in order:
        key = row.post.key
        survivor = reasons[key] is None
        if reuse and row.dedupe_key == dedupe_key and (row.dedupe is not None) == survivor:
            if row.dedupe == KEPT:
                assert isinstance(row.image, CachedImage)
                duplicates.keep(key, row.image.content_hash, row.image.phash)
            elif survivor:
                reasons[key] = row.dedupe
            continue
        reuse = False
        row.dedupe_key, row.dedupe = dedupe_key, None
        if survivor:
            assert isinstance(row.image, CachedImage)
            reasons[key] = duplicates.check(key, row.image.content_hash, row.image.phash)
            row.dedupe = reasons[key] or KEPT
