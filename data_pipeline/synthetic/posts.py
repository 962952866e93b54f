"""Posts in instaloader's own on-disk layout, written with instaloader's own structures.

For each post ``<dir>/<date>_UTC.jpg``, ``.txt`` (caption plus newline, as
``Instaloader.save_caption`` writes it) and ``.json.xz`` (``instaloader.save_structure_to_file``
of a ``Post`` built from a GraphQL-shaped node), so ``instaloader.load_structure_from_file``
reads them back exactly as it reads a real scrape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import instaloader
import numpy as np
from PIL import Image

FIRST_TIMESTAMP = int(datetime(2015, 1, 1, tzinfo=UTC).timestamp())
END_TIMESTAMP = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
# fmt: off
_NAMES = ("laura", "jordi", "marta", "pau", "claire", "julien", "emma", "alex", "nuria", "carlos",
          "sofia", "marc", "ines", "hugo", "anna", "oriol", "lucia", "pierre", "mia", "david",
          "elena", "tom", "clara", "leo", "montse", "camille", "sam", "irene")
_SUFFIXES = ("art", "bcn", "paris", "travels", "pinta", "museum", "studio", "photo", "gallery",
             "madrid", "palma", "lover", "daily", "draws", "design", "films", "visits")
# fmt: on
_INSTITUTIONAL = ("fundaciomiro", "miromallorca", "joanmiro.daily")


@dataclass(frozen=True)
class Owner:
    """An Instagram account: lowercase username and numeric id (as a string, as in GraphQL)."""

    username: str
    user_id: str


def post_stem(timestamp: int) -> str:
    """File stem of a post under instaloader's default pattern ``{date_utc}_UTC``."""
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d_%H-%M-%S}_UTC"


def draw_timestamps(rng: np.random.Generator, n: int) -> list[int]:
    """``n`` strictly increasing UNIX timestamps in 2015-2024 (so file names are unique)."""
    low = rng.integers(FIRST_TIMESTAMP, END_TIMESTAMP - n, size=n)
    return (np.sort(low) + np.arange(n)).tolist()


def draw_media_ids(rng: np.random.Generator, n: int) -> list[int]:
    """``n`` unique increasing media ids in [2**60, 2**63), whose shortcodes have 11 characters."""
    ids: set[int] = set()
    while len(ids) < n:
        ids.update(rng.integers(2**60, 2**63, size=n - len(ids), dtype=np.uint64).tolist())
    return sorted(ids)


def shortcode(media_id: int) -> str:
    """Instagram's shortcode of a media id (URL-safe base64), as instaloader computes it."""
    return instaloader.Post.mediaid_to_shortcode(media_id)


def make_owners(rng: np.random.Generator, n: int) -> list[Owner]:
    """``n`` distinct accounts (a few institutional ones among them), in random order."""
    names = dict.fromkeys(_INSTITUTIONAL[:n])
    while len(names) < n:
        name, suffix = _NAMES[rng.integers(len(_NAMES))], _SUFFIXES[rng.integers(len(_SUFFIXES))]
        sep = ("", "_", ".")[rng.integers(3)]
        digits = str(rng.integers(1, 100)) if rng.random() < 0.4 else ""
        names[f"{name}{sep}{suffix}{digits}"] = None
    usernames = list(names)
    rng.shuffle(usernames)
    user_ids = dict.fromkeys(rng.integers(10**8, 10**11, size=n).tolist())
    while len(user_ids) < n:
        user_ids[int(rng.integers(10**8, 10**11))] = None
    return [Owner(u, str(i)) for u, i in zip(usernames, user_ids, strict=True)]


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Probability of each of ``n`` ranked owners: proportional to ``1 / rank**exponent``."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def graphql_node(
    *,
    media_id: int,
    owner: Owner,
    timestamp: int,
    caption: str,
    width: int,
    height: int,
    likes: int,
    comments: int,
) -> dict:
    """A post node shaped like Instagram's GraphQL ``GraphImage``.

    It holds every field instaloader's ``Post`` reads for an image post, so no property of the
    loaded post falls back to a network query.
    """
    code = shortcode(media_id)
    url = f"https://scontent.cdninstagram.com/v/t51.2885-15/{media_id}_{owner.user_id}_n.jpg"
    return {
        "__typename": "GraphImage",
        "id": str(media_id),
        "shortcode": code,
        "dimensions": {"height": height, "width": width},
        "display_url": url,
        "thumbnail_src": url,
        "is_video": False,
        "accessibility_caption": None,
        "title": None,
        "edge_media_to_tagged_user": {"edges": []},
        "edge_media_to_sponsor_user": {"edges": []},
        "edge_media_to_caption": {"edges": [{"node": {"text": caption}}]},
        "caption_is_edited": False,
        "edge_media_to_comment": {"count": comments, "edges": []},
        "comments_disabled": False,
        "taken_at_timestamp": timestamp,
        "edge_liked_by": {"count": likes},
        "edge_media_preview_like": {"count": likes, "edges": []},
        "location": None,
        "owner": {"id": owner.user_id, "username": owner.username},
    }


def write_post(
    context: instaloader.InstaloaderContext,
    out_dir: Path,
    node: dict,
    image: Image.Image,
    jpeg_quality: int = 90,
) -> str:
    """Write one post's ``.jpg``, ``.txt`` and ``.json.xz`` into ``out_dir``; return its stem.

    As instaloader does, the image and caption files get the post's date as modification time.
    """
    post = instaloader.Post(context, node)
    timestamp = node["taken_at_timestamp"]
    stem = post_stem(timestamp)
    image_path, caption_path = out_dir / f"{stem}.jpg", out_dir / f"{stem}.txt"
    image.save(image_path, "JPEG", quality=jpeg_quality)
    with open(caption_path, "w", encoding="UTF-8") as f:
        f.write(post.caption + "\n")
    instaloader.save_structure_to_file(post, str(out_dir / f"{stem}.json.xz"))
    for path in (image_path, caption_path):
        os.utime(path, (timestamp, timestamp))
    return stem
