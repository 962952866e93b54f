"""A labelled image folder, split for a probe: torchvision's ImageFolder layout
(``DIR/<class>/*.jpg``), either as ``DIR/train`` and ``DIR/test`` or split here, per class.

Example::

    split = probe_split("data/labelled", test_fraction=0.3, seed=0)
    split.train.paths, split.train.labels, split.train.classes   # paths, (N,) int, names
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from miro.images import find_images
from miro.retrieval.errors import RetrievalError

log = logging.getLogger(__name__)


class ProbeError(RetrievalError):
    """A labelled folder or probe setting that cannot be probed; the message says the fix."""


@dataclass(frozen=True)
class LabelledImages:
    """Image paths and their class indices into ``classes``."""

    paths: list[Path]
    labels: np.ndarray  # (N,) int
    classes: list[str]

    def subset(self, rows: Sequence[int]) -> "LabelledImages":
        return LabelledImages([self.paths[i] for i in rows], self.labels[list(rows)], self.classes)


@dataclass(frozen=True)
class ProbeSplit:
    """The labelled folder, split; ``how`` says how, for the report."""

    folder: Path
    train: LabelledImages
    test: LabelledImages
    how: str


def read_image_folder(folder: Path, classes: Sequence[str] | None = None) -> LabelledImages:
    """torchvision's ImageFolder layout: ``folder/<class>/**/*.jpg``, classes sorted by name.
    Subfolders without an image are no class; ``classes`` fixes the class order (a test split's
    class must be one of them)."""
    found = {
        entry.name: find_images(entry)
        for entry in sorted(folder.iterdir())
        if entry.is_dir() and not entry.name.startswith(".")
    }
    empty = [name for name, paths in found.items() if not paths]
    if empty:
        log.warning("%s: folders without images, not classes: %s", folder, ", ".join(empty))
    found = {name: paths for name, paths in found.items() if paths}
    classes = list(classes) if classes is not None else sorted(found)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ProbeError(f"{folder} has classes the train folder lacks: {', '.join(unknown)}")
    paths = [path for name in classes for path in found.get(name, [])]
    labels = [index for index, name in enumerate(classes) for _ in found.get(name, [])]
    return LabelledImages(paths, np.array(labels, dtype=np.int64), classes)


def probe_split(folder: str | Path, test_fraction: float = 0.3, seed: int = 0) -> ProbeSplit:
    """``folder/train`` and ``folder/test`` when both exist (each an ImageFolder), else a
    stratified split of ``folder``: per class, ``test_fraction`` of its images (at least one,
    and one left to train on), drawn with ``seed``."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ProbeError(
            f"probe={folder}: no such folder; give a labelled image folder, DIR/<class>/*.jpg"
        )
    halves = [(folder / half).is_dir() for half in ("train", "test")]
    if all(halves):
        train = read_image_folder(folder / "train")
        _check_classes(train, folder / "train")
        test = read_image_folder(folder / "test", train.classes)
        if not test.paths:
            raise ProbeError(f"{folder / 'test'} holds no image in a class folder")
        return ProbeSplit(folder, train, test, "the folder's train/ and test/")
    if any(halves):
        raise ProbeError(f"{folder} has only one of train/ and test/; give both, or neither")
    images = read_image_folder(folder)
    _check_classes(images, folder)
    rng = np.random.default_rng(seed)
    test_rows = []
    for label, name in enumerate(images.classes):
        rows = np.flatnonzero(images.labels == label)
        if len(rows) < 2:
            raise ProbeError(
                f"class {name!r} of {folder} has 1 image; a split needs 2 a class (or give "
                "DIR/train and DIR/test)"
            )
        count = min(len(rows) - 1, max(1, round(len(rows) * test_fraction)))
        test_rows += rng.permutation(rows)[:count].tolist()
    train_rows = sorted(set(range(len(images.paths))) - set(test_rows))
    how = f"stratified, {test_fraction:.0%} of each class held out, seed {seed}"
    return ProbeSplit(folder, images.subset(train_rows), images.subset(sorted(test_rows)), how)


def _check_classes(images: LabelledImages, folder: Path) -> None:
    if len(images.classes) < 2:
        raise ProbeError(
            f"{folder} holds {len(images.classes)} class folder(s) with images "
            f"({', '.join(images.classes) or 'none'}); a probe needs at least 2: "
            "DIR/<class>/*.jpg"
        )
