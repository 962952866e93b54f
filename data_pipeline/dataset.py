"""Build a dataset dir from raw instaloader posts: filter, cache images, split, write manifest.

The plain-function form of ``python -m data_pipeline.build``; every bad post is skipped and
counted by reason, never a crash.

Example::

    from miro.text.tokenize import CaptionTokenizer

    report = build_dataset("data/raw", "data/dataset", CaptionTokenizer(), num_workers=2)
    print(report.table())
"""

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from data_pipeline.filters import (
    DROP_REASONS,
    DUPLICATE_ID,
    IMAGE_UNREADABLE,
    PostCheck,
    default_checks,
    first_drop_reason,
)
from data_pipeline.images import ResizeSpec, cache_images
from data_pipeline.manifest import BuildReport, ManifestRow, write_manifest, write_report
from data_pipeline.raw import RawPost, find_post_files, offline_context, read_post
from data_pipeline.splits import assign_split, check_fractions

DEFAULT_SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}


def build_dataset(
    raw_dir: str | Path,
    out_dir: str | Path,
    tokenizer: Callable[[str], list[str]],
    *,
    min_words: int = 3,
    splits: Mapping[str, float] = DEFAULT_SPLITS,
    image_short_side: int = 256,
    jpeg_quality: int = 90,
    max_image_pixels: int = 40_000_000,
    num_workers: int = 2,
    progress: bool = True,
    checks: Sequence[PostCheck] | None = None,
) -> BuildReport:
    """Read every post under ``raw_dir`` and write the dataset into ``out_dir``.

    Args:
        raw_dir: a folder in instaloader's layout, searched recursively.
        out_dir: the dataset dir; gets ``manifest.parquet``, ``report.json`` and ``images/``.
        tokenizer: caption → words, for the ``min_words`` filter (``CaptionTokenizer``).
        min_words: fewest tokenizer words a kept caption has.
        splits: split name → fraction of posts, summing to 1; assigned by a hash of the id.
        image_short_side: short side of cached images in pixels (smaller ones are not upscaled).
        jpeg_quality: quality of cached JPEGs.
        max_image_pixels: larger images are dropped as decompression bombs.
        num_workers: processes decoding images; 0 or 1 decodes in this process.
        progress: show a progress bar.
        checks: caption checks run before images, in order; default ``default_checks``.

    Returns:
        The counts, also written to ``out_dir/report.json``.

    Raises:
        RawFolderError: ``raw_dir`` is missing or holds no posts.
        SplitFractionsError: the split fractions are negative or do not sum to 1.
    """
    check_fractions(splits)
    raw_dir, out_dir = (Path(path).expanduser().resolve() for path in (raw_dir, out_dir))
    post_files = find_post_files(raw_dir)
    checks = default_checks(tokenizer, min_words) if checks is None else checks
    report = BuildReport(
        raw_dir=str(raw_dir),
        dataset_dir=str(out_dir),
        seen=len(post_files),
        dropped=dict.fromkeys(DROP_REASONS, 0),
        splits=dict.fromkeys(splits, 0),
    )

    context = offline_context()
    candidates: list[RawPost] = []
    seen_ids: set[str] = set()
    for files in post_files:
        post = read_post(files, context)
        # The same post saved under two hashtag folders is one post.
        reason = DUPLICATE_ID if post.id in seen_ids else first_drop_reason(post, checks)
        if reason is None:
            seen_ids.add(post.id)
            candidates.append(post)
        else:
            report.drop(reason, post.stem)

    out_dir.mkdir(parents=True, exist_ok=True)
    spec = ResizeSpec(image_short_side, jpeg_quality, max_image_pixels)
    images = cache_images(
        [post.images for post in candidates], out_dir, spec, num_workers, progress
    )
    rows = []
    for post, image in zip(candidates, images, strict=True):
        if image is None:
            report.drop(IMAGE_UNREADABLE, post.stem)
            continue
        split = assign_split(post.id, splits)
        report.splits[split] += 1
        rows.append(ManifestRow(post, split, image))
    report.kept = len(rows)

    write_manifest(rows, out_dir)
    write_report(report, out_dir)
    return report
