"""The scrape catalog: one SQLite file that records every post seen and where each walk stopped.

``DIR/catalog.sqlite`` (stdlib ``sqlite3``, WAL mode) holds two tables:

* ``posts``: one row per shortcode, whichever hashtags it was found under (a JSON list), its
  owner, date, caption, image files (a JSON list of paths relative to ``DIR``) and whether it was
  ``'downloaded'`` or ``'failed'`` (with the error).
* ``cursors``: one row per hashtag, the walk's instaloader ``FrozenNodeIterator`` (as the JSON
  ``instaloader.get_json_structure`` writes), how many posts it has yielded and whether it is done.

Every write commits at once, or at the end of a ``with catalog.transaction():`` block, so a crash
or ``kill -9`` loses nothing already recorded. Later stages read the catalog, never the scraper.

Example::

    with Catalog.open("data/raw", read_only=True) as catalog:
        for post in catalog.downloaded():
            print(post.shortcode, post.hashtags, post.image_files)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import instaloader

FILENAME = "catalog.sqlite"
STATUSES = ("downloaded", "failed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    shortcode TEXT PRIMARY KEY,
    hashtags TEXT NOT NULL,      -- JSON list, in the order the post was found under them
    owner TEXT,
    date_utc TEXT,               -- ISO 8601
    caption TEXT,
    image_files TEXT NOT NULL,   -- JSON list of paths relative to the catalog's folder
    is_video INTEGER,
    status TEXT NOT NULL,        -- 'downloaded' | 'failed'
    error TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    hashtag TEXT PRIMARY KEY,
    frozen TEXT,                 -- instaloader FrozenNodeIterator as JSON
    posts_seen INTEGER,
    done INTEGER,
    updated_at TEXT
);
"""


@dataclass(frozen=True)
class CatalogPost:
    """One row of ``posts``; ``image_files`` are relative to the catalog's folder."""

    shortcode: str
    hashtags: tuple[str, ...]
    owner: str | None
    date_utc: str | None
    caption: str | None
    image_files: tuple[str, ...]
    is_video: bool | None
    status: str
    error: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class Cursor:
    """One row of ``cursors``: where the walk of ``hashtag`` stands."""

    hashtag: str
    frozen: instaloader.FrozenNodeIterator | None
    posts_seen: int
    done: bool
    updated_at: str | None


class Catalog:
    """The SQLite catalog of a scrape folder (see the module docstring for the schema)."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self._depth = 0
        if read_only:  # a later stage reading while a scrape may still be writing (WAL allows it)
            if not self.path.is_file():
                raise FileNotFoundError(f"no scrape catalog at {self.path}")
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each statement commits unless inside transaction(), which says BEGIN itself.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed post survives a power cut too
        self._db.executescript(SCHEMA)

    @classmethod
    def open(cls, folder: str | Path, read_only: bool = False) -> Catalog:
        """Open ``folder/catalog.sqlite``: created if missing, unless ``read_only``."""
        return cls(Path(folder) / FILENAME, read_only=read_only)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Catalog]:
        """Group writes: all of them commit at the end of the block, or none (on an exception)."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    # posts

    def get(self, shortcode: str) -> CatalogPost | None:
        row = self._db.execute("SELECT * FROM posts WHERE shortcode = ?", (shortcode,)).fetchone()
        return _post(row) if row else None

    def upsert_post(self, post: CatalogPost) -> None:
        """Insert or replace ``post``; hashtags already recorded for it are kept (merged)."""
        if post.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {post.status!r}")
        with self.transaction():
            old = self.get(post.shortcode)
            hashtags = _merge(old.hashtags if old else (), post.hashtags)
            self._db.execute(
                "INSERT OR REPLACE INTO posts (shortcode, hashtags, owner, date_utc, caption,"
                " image_files, is_video, status, error, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    post.shortcode,
                    json.dumps(hashtags),
                    post.owner,
                    post.date_utc,
                    post.caption,
                    json.dumps(list(post.image_files)),
                    None if post.is_video is None else int(post.is_video),
                    post.status,
                    post.error,
                    _now(),
                ),
            )

    def add_hashtag(self, shortcode: str, hashtag: str) -> bool:
        """Record that a seen post was also found under ``hashtag``; False if it already was.

        Raises:
            KeyError: no post ``shortcode`` in the catalog.
        """
        with self.transaction():
            post = self.get(shortcode)
            if post is None:
                raise KeyError(f"no post {shortcode!r} in {self.path}")
            if hashtag in post.hashtags:
                return False
            self._db.execute(
                "UPDATE posts SET hashtags = ?, updated_at = ? WHERE shortcode = ?",
                (json.dumps([*post.hashtags, hashtag]), _now(), shortcode),
            )
            return True

    def count(self, status: str | None = "downloaded") -> int:
        """Posts with ``status`` (all posts when None)."""
        if status is None:
            return self._db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
        query = "SELECT COUNT(*) FROM posts WHERE status = ?"
        return self._db.execute(query, (status,)).fetchone()[0]

    def downloaded(self) -> Iterator[CatalogPost]:
        """Downloaded posts, oldest first."""
        query = "SELECT * FROM posts WHERE status = 'downloaded' ORDER BY date_utc, shortcode"
        for row in self._db.execute(query).fetchall():
            yield _post(row)

    def posts(self) -> Iterator[CatalogPost]:
        """Every post, downloaded or failed, oldest first."""
        for row in self._db.execute("SELECT * FROM posts ORDER BY date_utc, shortcode").fetchall():
            yield _post(row)

    def references(self, image_file: str) -> str | None:
        """Shortcode of the downloaded post whose ``image_files`` hold ``image_file``, if any."""
        query = (
            "SELECT posts.shortcode FROM posts, json_each(posts.image_files)"
            " WHERE json_each.value = ? AND posts.status = 'downloaded'"
        )
        row = self._db.execute(query, (image_file,)).fetchone()
        return row[0] if row else None

    # cursors

    def save_cursor(
        self,
        hashtag: str,
        frozen: instaloader.FrozenNodeIterator | None,
        posts_seen: int,
        done: bool = False,
    ) -> None:
        """Store where the walk of ``hashtag`` stands."""
        state = None if frozen is None else json.dumps(instaloader.get_json_structure(frozen))
        self._db.execute(
            "INSERT OR REPLACE INTO cursors (hashtag, frozen, posts_seen, done, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (hashtag, state, posts_seen, int(done), _now()),
        )

    def load_cursor(self, hashtag: str) -> Cursor | None:
        """The stored walk of ``hashtag``, or None if it was never started."""
        row = self._db.execute("SELECT * FROM cursors WHERE hashtag = ?", (hashtag,)).fetchone()
        if row is None:
            return None
        frozen = None
        if row["frozen"]:
            # The same structure instaloader.load_structure reads; it needs no context for this.
            frozen = instaloader.load_structure(None, json.loads(row["frozen"]))  # type: ignore[arg-type]
        return Cursor(
            hashtag=row["hashtag"],
            frozen=frozen,
            posts_seen=row["posts_seen"] or 0,
            done=bool(row["done"]),
            updated_at=row["updated_at"],
        )


def _post(row: sqlite3.Row) -> CatalogPost:
    return CatalogPost(
        shortcode=row["shortcode"],
        hashtags=tuple(json.loads(row["hashtags"])),
        owner=row["owner"],
        date_utc=row["date_utc"],
        caption=row["caption"],
        image_files=tuple(json.loads(row["image_files"])),
        is_video=None if row["is_video"] is None else bool(row["is_video"]),
        status=row["status"],
        error=row["error"],
        updated_at=row["updated_at"],
    )


def _merge(first: tuple[str, ...], second: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
