"""Download one post with instaloader's own ``Instaloader.download_post``, in its layout.

A post of ``#tag`` lands in ``DIR/#tag/`` as ``<date>_UTC.jpg`` (carousels ``<date>_UTC_1.jpg``,
``_2``...; videos their thumbnail), ``.txt`` (caption) and ``.json.xz`` (the node).
instaloader names files by the post's second, so two posts of one hashtag taken in the same
second would overwrite each other; the later one goes to ``DIR/#tag/<shortcode>/`` instead
(``data_pipeline.raw`` reads folders recursively).
"""

from __future__ import annotations

import json
import lzma
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import instaloader

from data_pipeline.catalog import Catalog, CatalogPost
from data_pipeline.raw import POST_IMAGE_SUFFIXES

MAX_CAROUSEL = 20  # Instagram allows 20 images in a post


def hashtag_folder(out_dir: Path, hashtag: str) -> Path:
    """instaloader's folder for a hashtag's posts (its ``{target}`` is ``#hashtag``)."""
    return out_dir / f"#{hashtag}"


def download_post(
    loader: instaloader.Instaloader,
    post: instaloader.Post,
    hashtag: str,
    out_dir: Path,
    catalog: Catalog,
) -> CatalogPost:
    """Write ``post``'s files under ``out_dir`` and return its catalog row (not yet recorded).

    The row says ``'downloaded'``, or ``'failed'`` when no image came although one was asked for.

    Raises:
        Whatever instaloader raises for the requests it makes (``ConnectionException``...).
    """
    target = f"#{hashtag}"
    stem = loader.format_filename(post, target=target)
    folder = _free_folder(hashtag_folder(out_dir, hashtag), stem, post.shortcode, out_dir, catalog)
    loader.dirname_pattern = _literal(folder)
    loader.download_post(post, target=target)
    images = [path.relative_to(out_dir).as_posix() for path in image_files(folder, stem)]
    is_video = bool(instaloader.get_json_structure(post)["node"].get("is_video"))
    wants_image = loader.download_pictures and (not is_video or loader.download_video_thumbnails)
    error = "instaloader wrote no image" if wants_image and not images else None
    return post_record(post, hashtag, images, error)


def post_record(
    post: instaloader.Post, hashtag: str, images: list[str], error: str | None
) -> CatalogPost:
    """The catalog row of ``post``, read from its node only (no further requests)."""
    node = instaloader.get_json_structure(post)["node"]
    owner = node.get("owner")
    # Hashtag listings often carry the owner's id only; asking for the name costs a request.
    username = owner.get("username") if isinstance(owner, dict) else None
    date = _field(lambda: post.date_utc.replace(tzinfo=UTC).isoformat())
    return CatalogPost(
        shortcode=post.shortcode,
        hashtags=(hashtag,),
        owner=username or None,
        date_utc=date,
        caption=_field(lambda: post.caption),
        image_files=tuple(images),
        is_video=bool(node.get("is_video")),
        status="failed" if error else "downloaded",
        error=error,
    )


def _field(read: Callable[[], Any]) -> Any:
    """A node's field, or None when it lacks it or holds garbage (failed posts get a row too)."""
    try:
        return read()
    except (KeyError, TypeError, ValueError, OverflowError, OSError, AttributeError):
        return None


def failed_record(post: instaloader.Post, hashtag: str, error: BaseException) -> CatalogPost:
    """The catalog row of a post whose download raised ``error``."""
    return post_record(post, hashtag, [], f"{type(error).__name__}: {error}")


def image_files(folder: Path, stem: str) -> list[Path]:
    """The images instaloader wrote for ``stem`` in ``folder``, in carousel order.

    Names are probed rather than listed: a hashtag's folder may hold a million files.
    """
    names = [stem, *(f"{stem}_{index}" for index in range(1, MAX_CAROUSEL + 1))]
    return [
        folder / f"{name}{suffix}"
        for name in names
        for suffix in POST_IMAGE_SUFFIXES  # what download_pic names by Content-Type
        if (folder / f"{name}{suffix}").is_file()
    ]


def _free_folder(folder: Path, stem: str, shortcode: str, out_dir: Path, catalog: Catalog) -> Path:
    """``folder``, unless another post already owns ``stem`` there: then ``folder/<shortcode>``.

    Images left by an interrupted attempt that no recorded post owns are removed, so
    instaloader (which skips existing files) cannot keep a stranger's image.
    """
    owner = _metadata_shortcode(folder / f"{stem}.json.xz")
    if owner is not None and owner != shortcode:
        return _free_folder(folder / shortcode, stem, shortcode, out_dir, catalog)
    for path in image_files(folder, stem):
        other = catalog.references(path.relative_to(out_dir).as_posix())
        if other is not None and other != shortcode:
            return _free_folder(folder / shortcode, stem, shortcode, out_dir, catalog)
        if other is None and owner is None:
            path.unlink()
    return folder


def _metadata_shortcode(path: Path) -> str | None:
    """Shortcode in a ``.json.xz`` that instaloader wrote, or None if absent or unreadable."""
    try:
        with lzma.open(path, "rt", encoding="utf-8") as file:
            node = json.load(file)["node"]
        return node.get("shortcode") or node.get("code")
    except (OSError, EOFError, lzma.LZMAError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _literal(path: Path) -> str:
    """``path`` as an instaloader ``dirname_pattern`` (a format string) that formats to itself."""
    return str(path).replace("{", "{{").replace("}", "}}")
