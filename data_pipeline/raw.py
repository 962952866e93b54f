"""Read raw posts from instaloader's on-disk layout, offline.

instaloader saves a post as files sharing the stem ``{date_utc:%Y-%m-%d_%H-%M-%S}_UTC``:
``<stem>.jpg`` (carousels: ``<stem>_1.jpg``, ``<stem>_2.jpg``...), ``<stem>.txt`` (the caption)
and ``<stem>.json.xz`` (the post's node, written by ``instaloader.save_structure_to_file``).
Everything else (videos, ``_comments.json``, ``_location.txt``, our ``ground_truth.jsonl``) is
ignored. Folders are searched recursively, so ``raw/#joanmiro/`` and ``raw/#miro/`` are read
together.

Example::

    posts = [read_post(files, offline_context()) for files in find_post_files("data/raw")]
"""

import json
import lzma
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import instaloader

STEM_FORMAT = "%Y-%m-%d_%H-%M-%S_UTC"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_POST_FILE = re.compile(
    r"(?P<stem>\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_UTC)(?:_(?P<index>\d+))?"
    r"(?P<suffix>\.json\.xz|\.[A-Za-z]+)"
)
# instaloader's own hashtag pattern (Post.caption_hashtags), applied to whichever caption we keep.
_HASHTAG = re.compile(r"#(\w{1,150})")


class RawFolderError(Exception):
    """The raw folder is missing or holds no instaloader posts."""


@dataclass
class PostFiles:
    """The files of one post: ``stem`` is ``<folder>/<date>_UTC``, images in carousel order."""

    stem: Path
    images: list[Path] = field(default_factory=list)
    caption: Path | None = None
    metadata: Path | None = None


@dataclass(frozen=True)
class RawPost:
    """One post as read from disk; ``caption`` is None when neither file holds one."""

    id: str
    stem: Path
    caption: str | None
    owner: str | None
    date: datetime | None
    hashtags: tuple[str, ...]
    images: tuple[Path, ...]


def find_post_files(raw_dir: str | Path) -> list[PostFiles]:
    """Group the files under ``raw_dir`` (recursively) into posts, sorted by path.

    Raises:
        RawFolderError: ``raw_dir`` is not a folder or holds no post.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise RawFolderError(
            f"raw folder {raw_dir} does not exist or is not a folder. {_HOW_TO_FILL}"
        )
    posts: dict[Path, PostFiles] = {}
    indexed_images: dict[Path, list[tuple[int, Path]]] = {}
    for path in _walk_files(raw_dir):
        match = _POST_FILE.fullmatch(path.name)
        if match is None:
            continue
        stem = path.with_name(match["stem"])
        suffix, index = match["suffix"].lower(), match["index"]
        post = posts.setdefault(stem, PostFiles(stem))
        if suffix in IMAGE_SUFFIXES:
            indexed_images.setdefault(stem, []).append((int(index or 0), path))
        elif index is not None:
            continue
        elif suffix == ".txt":
            post.caption = path
        elif suffix == ".json.xz" or (suffix == ".json" and post.metadata is None):
            post.metadata = path
    for stem, images in indexed_images.items():
        posts[stem].images = [path for _, path in sorted(images)]
    found = [posts[stem] for stem in sorted(posts) if _is_post(posts[stem])]
    if not found:
        raise RawFolderError(
            f"raw folder {raw_dir} holds no instaloader posts (<date>_UTC.jpg/.txt/.json.xz). "
            + _HOW_TO_FILL
        )
    return found


_HOW_TO_FILL = (
    "Fill it with `python -m data_pipeline.synthetic out=DIR` (synthetic posts) or "
    "`python -m data_pipeline.scrape` (Instagram), then pass raw=DIR."
)


def _walk_files(root: Path) -> Iterator[Path]:
    for folder, _, names in os.walk(root):
        for name in names:
            yield Path(folder, name)


def _is_post(post: PostFiles) -> bool:
    return bool(post.images) or post.caption is not None or post.metadata is not None


def offline_context() -> instaloader.InstaloaderContext:
    """An instaloader context for loading saved posts; create it once per build."""
    return instaloader.Instaloader(quiet=True).context


def read_post(files: PostFiles, context: instaloader.InstaloaderContext) -> RawPost:
    """Read one post: caption from the ``.txt`` (else the ``.json.xz``), the rest from metadata.

    The post id is the shortcode when the metadata has one, else the file stem. Metadata that
    fails to load counts as missing. Nothing here reaches the network.
    """
    node, post = _load_post(files.metadata, context)
    caption = _read_text(files.caption)
    if not (caption and caption.strip()) and post is not None:
        caption = _field(lambda: post.caption)
    caption = caption.strip() if caption else caption
    owner = None
    owner_node = node.get("owner")
    if post is not None and isinstance(owner_node, dict) and "username" in owner_node:
        # Only read the owner the node carries: otherwise instaloader would ask Instagram.
        owner = _field(lambda: post.owner_username)
    date = _field(lambda: post.date_utc) if post is not None else None
    date = date or _stem_date(files.stem.name)
    shortcode = _field(lambda: post.shortcode) if post is not None else None
    return RawPost(
        id=str(shortcode) if shortcode else files.stem.name,
        stem=files.stem,
        caption=caption,
        owner=owner,
        date=date.replace(tzinfo=UTC) if date else None,
        hashtags=caption_hashtags(caption or ""),
        images=tuple(files.images),
    )


def caption_hashtags(caption: str) -> tuple[str, ...]:
    """Lowercase hashtags of a caption without ``#``, first occurrence order, no repeats."""
    return tuple(dict.fromkeys(_HASHTAG.findall(caption.lower())))


def _stem_date(stem: str) -> datetime | None:
    """instaloader names files by the post's UTC date: the fallback when metadata is missing."""
    try:
        return datetime.strptime(stem, STEM_FORMAT)
    except ValueError:
        return None


def _read_text(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


# What a damaged or foreign metadata file raises on the way to a Post.
_BAD_METADATA = (
    OSError,
    EOFError,
    lzma.LZMAError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    AssertionError,
    instaloader.InstaloaderException,
)


def _load_post(
    path: Path | None, context: instaloader.InstaloaderContext
) -> tuple[dict, instaloader.Post | None]:
    """The post's node and ``Post``, or ``({}, None)`` when the file is missing or unusable."""
    if path is None:
        return {}, None
    try:
        opener = lzma.open if path.name.endswith(".xz") else open
        with opener(path, "rt", encoding="utf-8") as file:
            structure = json.load(file)
        # As load_structure_from_file, minus instaloader v3 files: those re-fetch from Instagram.
        node = structure["node"]
        if structure["instaloader"]["node_type"] != "Post" or not isinstance(node, dict):
            return {}, None
        post = instaloader.load_structure(context, structure)
    except _BAD_METADATA:
        return {}, None
    return node, post


def _field(read: Callable[[], Any]) -> Any:
    """One metadata field, or None when the node lacks it or holds garbage."""
    try:
        return read()
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, OSError, AttributeError):
        return None
