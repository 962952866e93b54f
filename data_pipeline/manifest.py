"""The dataset's files: ``manifest.parquet`` (one row a kept post) and ``report.json``.

Training reads the manifest's columns (``MANIFEST_SCHEMA``); ``image`` is relative to the dataset
dir. Both files are written atomically, so a reader never sees half a file. ``read_manifest`` is
the reader, torch-free, with a clear error where no dataset was built.

Example::

    manifest = read_manifest("dataset")  # {'id': [...], 'split': [...], 'caption': [...], ...}
    manifest = read_manifest("dataset", columns=("id", "owner", "date"))
"""

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST_FILE = "manifest.parquet"
REPORT_FILE = "report.json"
# The splits training reads: the build's default split names.
SPLITS = ("train", "val", "test")

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("language", pa.string()),
        pa.field("owner", pa.string()),
        pa.field("date", pa.timestamp("us", tz="UTC")),
        pa.field("hashtags", pa.list_(pa.string()), nullable=False),
        pa.field("image", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
    ]
)


@dataclass(frozen=True)
class ManifestRow:
    """A kept post: one row of ``MANIFEST_SCHEMA``, field for column.

    ``language`` is None when not detected; ``image`` is the cached file relative to the
    dataset dir and ``source`` the raw file it was made from, ``width``/``height`` its size.
    """

    id: str
    split: str
    caption: str
    language: str | None
    owner: str | None
    date: datetime | None
    hashtags: list[str]
    image: str
    source: str
    width: int
    height: int


def write_manifest(rows: Sequence[ManifestRow], dataset_dir: Path) -> Path:
    """Write ``manifest.parquet`` (rows sorted by id) into ``dataset_dir``; returns its path."""
    rows = sorted(rows, key=lambda row: row.id)
    table = pa.Table.from_pylist([asdict(row) for row in rows], schema=MANIFEST_SCHEMA)
    path = Path(dataset_dir) / MANIFEST_FILE
    partial_file = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, partial_file)
    os.replace(partial_file, path)
    return path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset dir without ``manifest.parquet``: no dataset was built there."""


def read_manifest(
    dataset_dir: str | Path,
    columns: Sequence[str] = ("id", "split", "caption", "language", "image"),
) -> dict[str, list]:
    """The manifest's ``columns`` (names of ``MANIFEST_SCHEMA``) as lists, in id order.

    Raises:
        DatasetNotFoundError: ``dataset_dir`` has no manifest; the message says how to build one.
    """
    path = Path(dataset_dir) / MANIFEST_FILE
    if not path.is_file():
        raise DatasetNotFoundError(
            f"no dataset at {dataset_dir} ({MANIFEST_FILE} is missing). Make one with either\n"
            f"  python -m data_pipeline.scrape out=RAW && "
            f"python -m data_pipeline.build raw=RAW out={dataset_dir}\n"
            f"or, offline:\n"
            f"  python -m data_pipeline.synthetic out=RAW && "
            f"python -m data_pipeline.build raw=RAW out={dataset_dir}\n"
            "then pass data.dataset_dir=DIR"
        )
    return pq.read_table(path, columns=list(columns)).to_pydict()


@dataclass
class BuildReport:
    """What a build saw, kept and dropped (by reason), and the kept posts per split and language.

    ``examples`` holds up to a few post stems per drop reason, to look at by hand (a duplicate
    names the post it copies after ``<-``). ``work`` counts what this run did itself rather than
    reuse: posts read, captions language-detected, images decoded or hashed; ``timings`` the
    wall and CPU seconds (image workers included) of each stage.
    """

    raw_dir: str
    dataset_dir: str
    seen: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    work: dict[str, int] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def drop(self, reason: str, stem: Path, note: str = "", max_examples: int = 5) -> None:
        """Count one dropped post."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < max_examples:
            examples.append(f"{stem} <- {note}" if note else str(stem))

    def table(self) -> str:
        """The counts as a small aligned text table."""
        lines = [
            ("posts seen", self.seen),
            ("kept", self.kept),
            ("dropped", sum(self.dropped.values())),
            *((f"  {reason}", count) for reason, count in self.dropped.items()),
            *((f"split {name}", count) for name, count in self.splits.items()),
            *((f"language {name}", count) for name, count in self.languages.items()),
        ]
        width = max(len(label) for label, _ in lines)
        return "\n".join(f"{label:<{width}}  {count:>8,}" for label, count in lines)


def write_report(report: BuildReport, dataset_dir: Path) -> Path:
    """Write ``report.json`` into ``dataset_dir``; returns its path."""
    path = Path(dataset_dir) / REPORT_FILE
    partial_file = path.with_name(f".{path.name}.tmp")
    partial_file.write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n")
    os.replace(partial_file, path)
    return path
