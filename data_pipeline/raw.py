"""Read raw posts from instaloader's on-disk layout, offline.

instaloader saves a post as files sharing the stem ``{date_utc:%Y-%m-%d_%H-%M-%S}_UTC``:
``<stem>.jpg`` (carousels: ``<stem>_1.jpg``, ``<stem>_2.jpg``...), ``<stem>.txt`` (the caption)
and ``<stem>.json.xz`` (the post's node, written by ``instaloader.save_structure_to_file``).
Everything else (videos, ``_comments.json``, ``_location.txt``, our ``ground_truth.jsonl``) is
ignored. Folders are searched recursively, so ``raw/#joanmiro/`` and ``raw/#miro/`` are read
together.

``read_posts`` is the one place the build gets posts from. A reader of the scrape stage's
``catalog.sqlite`` belongs beside it, returning the same ``RawPost``s (with ``key`` and
``fingerprint`` from the catalog row: shortcode and ``updated_at``).

Example::

    posts, read = read_posts("data/raw")
    posts, read = read_posts("data/raw", reuse={post.key: post for post in posts})  # read == 0
"""

import dataclasses
import json
import lzma
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import instaloader

STEM_FORMAT = "%Y-%m-%d_%H-%M-%S_UTC"
# The pictures of a post, as instaloader names them by their Content-Type: fewer than
# data_pipeline.images.IMAGE_SUFFIXES, as Instagram serves no GIF, BMP or TIFF post.
POST_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
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
    """The files of one post: ``stem`` is ``<folder>/<date>_UTC``, images in carousel order.

    ``fingerprint`` changes whenever one of the files is added, removed, resized or touched.
    """

    stem: Path
    images: list[Path] = field(default_factory=list)
    caption: Path | None = None
    metadata: Path | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class RawPost:
    """One post as read from disk; ``caption`` is None when neither file holds one.

    ``key`` names the post within its source (the stem relative to the raw dir, POSIX style);
    ``fingerprint`` says whether its files changed since it was read.
    """

    id: str
    stem: Path
    caption: str | None
    owner: str | None
    date: datetime | None
    hashtags: tuple[str, ...]
    images: tuple[Path, ...]
    key: str = ""
    fingerprint: str = ""


def read_posts(
    raw_dir: str | Path, reuse: Mapping[str, RawPost] | None = None
) -> tuple[list[RawPost], int]:
    """Every post under ``raw_dir`` in path order, and how many were read from disk.

    A post in ``reuse`` (by key) whose files have not changed (same fingerprint) is taken from
    there rather than read again, so a re-run over a large scrape only lists its files.

    Raises:
        RawFolderError: ``raw_dir`` is not a folder or holds no post.
    """
    raw_dir = Path(raw_dir)
    reuse = reuse or {}
    context = None
    posts, read = [], 0
    for key, listing in _scan(raw_dir):
        known = reuse.get(key)
        if known is not None and known.fingerprint == listing.fingerprint:
            posts.append(known)
            continue
        context = context or offline_context()
        post = read_post(listing.post_files(), context)
        posts.append(dataclasses.replace(post, key=key, fingerprint=listing.fingerprint))
        read += 1
    return posts, read


@dataclass
class _Listing:
    """A post's files as found, in plain strings (a large scrape has millions of files)."""

    stem: str
    images: list[tuple[int, str]] = field(default_factory=list)
    caption: str | None = None
    metadata: str | None = None
    stats: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return ";".join(sorted(self.stats))

    def is_post(self) -> bool:
        return bool(self.images) or self.caption is not None or self.metadata is not None

    def post_files(self) -> PostFiles:
        return PostFiles(
            Path(self.stem),
            [Path(path) for _, path in sorted(self.images)],
            Path(self.caption) if self.caption else None,
            Path(self.metadata) if self.metadata else None,
            self.fingerprint,
        )


def _scan(raw_dir: Path) -> list[tuple[str, _Listing]]:
    """``(key, listing)`` of every post below ``raw_dir``, sorted as paths sort."""
    if not raw_dir.is_dir():
        raise RawFolderError(
            f"raw folder {raw_dir} does not exist or is not a folder. {_HOW_TO_FILL}"
        )
    listings: dict[str, _Listing] = {}
    for relative_folder, entry in _walk_files(str(raw_dir)):
        match = _POST_FILE.fullmatch(entry.name)
        if match is None:
            continue
        key = f"{relative_folder}{match['stem']}"
        listing = listings.get(key)
        if listing is None:
            stem = os.path.join(os.path.dirname(entry.path), match["stem"])
            listing = listings[key] = _Listing(stem)
        listing.stats.append(_file_fingerprint(entry))
        suffix, index = match["suffix"].lower(), match["index"]
        if suffix in POST_IMAGE_SUFFIXES:
            listing.images.append((int(index or 0), entry.path))
        elif index is not None:
            continue
        elif suffix == ".txt":
            listing.caption = entry.path
        elif suffix == ".json.xz" or (suffix == ".json" and listing.metadata is None):
            listing.metadata = entry.path
    found = sorted(
        ((key, listing) for key, listing in listings.items() if listing.is_post()),
        key=lambda item: item[0].split("/"),
    )
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


def _walk_files(root: str) -> Iterator[tuple[str, os.DirEntry]]:
    """Every file below ``root`` as (its folder relative to ``root`` + "/" or "", its entry)."""
    folders = [("", root)]
    while folders:
        relative, folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append((f"{relative}{entry.name}/", entry.path))
            elif entry.is_file():
                yield relative, entry


def _file_fingerprint(entry: os.DirEntry) -> str:
    """Name, size and modification time: what changes when a file is rewritten."""
    try:
        stat = entry.stat()
    except OSError:
        return f"{entry.name}:missing"
    return f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}"


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
    elif isinstance(owner_node, dict) and owner_node.get("id"):
        owner = f"id:{owner_node['id']}"  # hashtag listings name the owner by id only
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
