"""What earlier builds into a dataset dir learned, so the next build redoes only what is new.

``DATASET/build_state.sqlite`` holds one row a post, by ``key`` (its stem relative to the raw
dir): ``seq``, its place in arrival order (posts of earlier builds first, so a post that arrives
later can never displace one kept before); ``fingerprint`` and ``post``, the post as read;
``language`` with the ``language_key`` of the detector that found it; ``image`` (the cached file
and its hashes, or why there is none) with the ``image_key`` of the settings that made it; and
``dedupe`` (``kept``, ``exact_duplicate``, ``near_duplicate``; NULL for posts dropped before)
with its ``dedupe_key``. A value whose key differs from the current settings is recomputed.
Table ``meta`` holds the schema version and the raw dir the rows came from.

Example::

    state = BuildState.load(Path("dataset"), Path("raw"))
    state.posts["#miro/2024-01-01_10-00-00_UTC"].image  # CachedImage(...) or ImageDrop(...)
    state.save()
"""

import copy
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from data_pipeline.build.image_cache import CachedImage, ImageDrop
from data_pipeline.raw import RawPost

STATE_FILE = "build_state.sqlite"
SCHEMA_VERSION = "1"
_COLUMNS = (
    "key, seq, fingerprint, post, language, language_key, image, image_key, dedupe, dedupe_key"
)


@dataclass
class PostState:
    """One post's row: what was read, detected, cached and decided (None: not yet)."""

    post: RawPost
    seq: int
    language: str | None = None
    language_key: str | None = None
    image: CachedImage | ImageDrop | None = None
    image_key: str | None = None
    dedupe: str | None = None
    dedupe_key: str | None = None


class BuildState:
    """The rows of ``build_state.sqlite`` as ``posts`` (key → ``PostState``), saved back by diff.

    Rows written for another raw dir, or by another schema version, are discarded.
    """

    def __init__(self, path: Path, raw_dir: Path, posts: dict[str, PostState]) -> None:
        self.path = path
        self.raw_dir = raw_dir
        self.posts = posts
        self._saved = {key: copy.copy(state) for key, state in posts.items()}

    @classmethod
    def load(cls, dataset_dir: Path, raw_dir: Path) -> "BuildState":
        path = Path(dataset_dir) / STATE_FILE
        posts: dict[str, PostState] = {}
        if path.is_file():
            try:
                with _connect(path) as connection:
                    meta = dict(connection.execute("SELECT key, value FROM meta"))
                    if meta == {"version": SCHEMA_VERSION, "raw_dir": str(raw_dir)}:
                        rows = connection.execute(f"SELECT {_COLUMNS} FROM posts")
                        posts = {row[0]: _from_row(row, raw_dir) for row in rows}
            except (sqlite3.DatabaseError, ValueError, KeyError, TypeError):
                posts = {}  # a damaged state costs one full rebuild, never a wrong dataset
        return cls(path, raw_dir, posts)

    def next_seq(self) -> int:
        """The arrival number the next new post gets."""
        return max((state.seq for state in self.posts.values()), default=-1) + 1

    def save(self) -> None:
        """Write the rows that changed and delete those of posts no longer in ``posts``."""
        changed = [
            _to_row(key, state, self.raw_dir)
            for key, state in self.posts.items()
            if self._saved.get(key) != state
        ]
        gone = [(key,) for key in self._saved.keys() - self.posts.keys()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = _connect(self.path)
            connection.execute("SELECT count(*) FROM posts").fetchone()
        except sqlite3.DatabaseError:
            self.path.unlink(missing_ok=True)
            changed = [_to_row(key, state, self.raw_dir) for key, state in self.posts.items()]
            connection = _connect(self.path)
        with connection:
            connection.execute("DELETE FROM meta")
            connection.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("version", SCHEMA_VERSION), ("raw_dir", str(self.raw_dir))],
            )
            if not self._saved:
                connection.execute("DELETE FROM posts")  # rows of another raw dir
            connection.executemany("DELETE FROM posts WHERE key = ?", gone)
            placeholders = ", ".join("?" * len(_COLUMNS.split(",")))
            connection.executemany(
                f"INSERT OR REPLACE INTO posts ({_COLUMNS}) VALUES ({placeholders})", changed
            )
        connection.close()
        self._saved = {key: copy.copy(state) for key, state in self.posts.items()}


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS posts (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
        "fingerprint TEXT NOT NULL, post TEXT NOT NULL, language TEXT, language_key TEXT, "
        "image TEXT, image_key TEXT, dedupe TEXT, dedupe_key TEXT)"
    )
    return connection


def _relative(path: Path, raw_dir: Path) -> str:
    return path.relative_to(raw_dir).as_posix() if path.is_relative_to(raw_dir) else str(path)


def _to_row(key: str, state: PostState, raw_dir: Path) -> tuple:
    post = state.post
    post_json = {
        "id": post.id,
        "caption": post.caption,
        "owner": post.owner,
        "date": post.date.isoformat() if post.date else None,
        "hashtags": list(post.hashtags),
        "images": [_relative(path, raw_dir) for path in post.images],
    }
    image = state.image
    if isinstance(image, CachedImage):
        image_json = {
            "source": _relative(image.source, raw_dir),
            "path": image.path,
            "width": image.width,
            "height": image.height,
            "content_hash": image.content_hash,
            "phash": f"{image.phash:016x}",
        }
    elif isinstance(image, ImageDrop):
        image_json = {"reason": image.reason, "detail": image.detail}
    else:
        image_json = None
    return (
        key,
        state.seq,
        post.fingerprint,
        json.dumps(post_json, ensure_ascii=False),
        state.language,
        state.language_key,
        None if image_json is None else json.dumps(image_json, ensure_ascii=False),
        state.image_key,
        state.dedupe,
        state.dedupe_key,
    )


def _from_row(row: tuple, raw_dir: Path) -> PostState:
    key, seq, fingerprint, post_text, language, language_key, image_text, image_key = row[:8]
    fields = json.loads(post_text)
    post = RawPost(
        id=fields["id"],
        stem=raw_dir / key,
        caption=fields["caption"],
        owner=fields["owner"],
        date=datetime.fromisoformat(fields["date"]) if fields["date"] else None,
        hashtags=tuple(fields["hashtags"]),
        images=tuple(raw_dir / path for path in fields["images"]),
        key=key,
        fingerprint=fingerprint,
    )
    image: CachedImage | ImageDrop | None = None
    if image_text is not None:
        found = json.loads(image_text)
        if "reason" in found:
            image = ImageDrop(found["reason"], found["detail"])
        else:
            image = CachedImage(
                raw_dir / found["source"],
                found["path"],
                found["width"],
                found["height"],
                found["content_hash"],
                int(found["phash"], 16),
            )
    return PostState(post, seq, language, language_key, image, image_key, row[8], row[9])
