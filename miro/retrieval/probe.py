"""Linear probe: how well a frozen encoder's features tell labelled images apart.

TextTopicNet (Gomez et al., "Self-Supervised Learning of Visual Features through Embedding
Images into Text Topic Spaces", CVPR 2017) judged its self-supervised features by a linear
classifier on the frozen network (PASCAL VOC 2007). Here: the GoogLeNet's 1024-d global-pool
features (before the text-space head) of a labelled image folder, standardized, feed a
multinomial logistic regression; its test accuracy is reported beside chance (the training
split's majority class), the same probe on a randomly initialised encoder of the same
architecture (what training started from) and, when its weights are at hand, on ImageNet's
GoogLeNet. All encoders see the same images, read once.

Example::

    from miro.retrieval.labelled import probe_split
    split = probe_split("data/labelled")   # data/labelled/<class>/*.jpg, or train/ and test/
    report = probe_checkpoint("run/checkpoints/last.ckpt", split)
    print(report.table())                  # accuracies beside chance
    report.write(Path("probe.json"))
"""

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from miro.devices import resolve_device
from miro.models.checkpoints import load_encoder
from miro.models.googlenet import GoogLeNetEncoder
from miro.models.weights import WeightsNotFoundError
from miro.retrieval.embed import readable_batches, resolve_image_size
from miro.retrieval.labelled import ProbeError, ProbeSplit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeSettings:
    """How the probe splits, fits and compares (the ``probe_settings`` keys of
    ``conf/evaluate.yaml``).

    Args:
        test_fraction: share of each class held out, when the folder has no train/ and test/.
        seed: the split, the random-init encoder and the classifier (same seed, same numbers).
        C: inverse L2 strength of the logistic regression on standardized features; strong by
            default, as probe sets are often small beside 1024 features (on 4 synthetic
            motifs × 60 images, 0.01-0.1 beat sklearn's 1.0 for trained and random features).
        max_iter: L-BFGS iterations at most.
        random_init: also probe a randomly initialised encoder of the same architecture.
        imagenet: also probe ImageNet's GoogLeNet (skipped, with the reason, without weights).
        imagenet_weights: a local GoogLeNet state dict, instead of torchvision's cache.
    """

    test_fraction: float = 0.3
    seed: int = 0
    C: float = 0.1
    max_iter: int = 1000
    random_init: bool = True
    imagenet: bool = True
    imagenet_weights: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise ProbeError(f"probe_settings.test_fraction must be in (0, 1), got {self}")
        if self.C <= 0 or self.max_iter < 1:
            raise ProbeError(f"probe_settings.C must be > 0 and max_iter >= 1, got {self}")


@torch.inference_mode()
def pooled_features(encoder: GoogLeNetEncoder, images: torch.Tensor) -> np.ndarray:
    """Images ``(B, 3, H, W)`` in [0, 1] → the trunk's global-pool features ``(B, 1024)``."""
    pooled = []
    hook = encoder.net.avgpool.register_forward_hook(lambda _m, _i, out: pooled.append(out))
    try:
        # readable_batches pins its batches on a GPU machine: the copy runs asynchronously
        encoder(images.to(next(encoder.parameters()).device, non_blocking=True))
    finally:
        hook.remove()
    return torch.flatten(pooled[0], 1).float().cpu().numpy()


@dataclass
class Features:
    """Each encoder's features of the readable images of ``paths``, in order."""

    vectors: dict[str, np.ndarray]  # encoder name → (M, 1024)
    rows: list[int]  # the position in ``paths`` of each row
    skipped: dict[int, str] = field(default_factory=dict)  # position → why it was unreadable


def extract_features(
    encoders: Mapping[str, GoogLeNetEncoder],
    paths: Sequence[Path],
    image_size: int,
    batch_size: int = 64,
    num_workers: int = 2,
    progress: bool = True,
) -> Features:
    """Every encoder's ``pooled_features`` of ``paths``, each image read once (resized and
    center-cropped as retrieval reads them); unreadable images are skipped and counted."""
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in encoders}
    rows, skipped = [], {}
    for positions, images in readable_batches(
        paths, image_size, batch_size, num_workers, progress, skipped, desc="features"
    ):
        for name, encoder in encoders.items():
            chunks[name].append(pooled_features(encoder, images))
        rows += positions
    vectors = {name: np.concatenate(c) if c else np.zeros((0, 0)) for name, c in chunks.items()}
    return Features(vectors, rows, skipped)


def fit_probe(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    settings: ProbeSettings,
) -> dict:
    """Standardize, fit a multinomial logistic regression on ``train`` ``(N, F)``, score
    ``test`` ``(M, F)``: ``{"accuracy", "train_accuracy", "converged"}``."""
    probe = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=settings.C, max_iter=settings.max_iter, random_state=settings.seed),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        probe.fit(train, train_labels)
    return {
        "accuracy": float(probe.score(test, test_labels)),
        "train_accuracy": float(probe.score(train, train_labels)),
        "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
    }


@dataclass
class ProbeReport:
    """Probe accuracies of each encoder on one split, beside chance."""

    folder: Path
    how: str
    classes: list[str]
    train_images: dict[str, int]  # class → readable training images
    test_images: dict[str, int]
    image_size: int
    chance: float  # test accuracy of always answering the training split's majority class
    majority_class: str
    scores: dict[str, dict]  # encoder name → fit_probe's scores and a "source"
    skipped_encoders: dict[str, str] = field(default_factory=dict)  # name → why not probed
    unreadable: dict[str, str] = field(default_factory=dict)  # image path → why
    settings: ProbeSettings = field(default_factory=ProbeSettings)

    def table(self) -> str:
        """One row an encoder, then chance, for a terminal."""
        train, test = sum(self.train_images.values()), sum(self.test_images.values())
        lines = [
            f"linear probe on {self.folder}: {len(self.classes)} classes, {train} train / "
            f"{test} test images at {self.image_size} px ({self.how})",
            f"{'encoder':<14} {'test acc':>8} {'train acc':>9}  source",
        ]
        for name, score in self.scores.items():
            note = "" if score["converged"] else " (not converged: raise max_iter)"
            lines.append(
                f"{name:<14} {score['accuracy']:>8.3f} {score['train_accuracy']:>9.3f}  "
                f"{score['source']}{note}"
            )
        for name, reason in self.skipped_encoders.items():
            lines.append(f"{name:<14} {'skipped':>8}  {reason}")
        lines.append(f"{'chance':<14} {self.chance:>8.3f}  majority class {self.majority_class!r}")
        if self.unreadable:
            lines.append(f"unreadable images left out: {len(self.unreadable)}")
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        """The report as JSON."""
        report = {
            "folder": str(self.folder),
            "split": self.how,
            "classes": self.classes,
            "train_images": self.train_images,
            "test_images": self.test_images,
            "image_size": self.image_size,
            "chance": {"accuracy": self.chance, "majority_class": self.majority_class},
            "encoders": self.scores | {n: {"skipped": r} for n, r in self.skipped_encoders.items()},
            "unreadable": self.unreadable,
            "settings": asdict(self.settings),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def probe_encoders(
    encoders: Mapping[str, tuple[GoogLeNetEncoder, str]],
    split: ProbeSplit,
    image_size: int,
    settings: ProbeSettings = ProbeSettings(),
    batch_size: int = 64,
    num_workers: int = 2,
    progress: bool = True,
) -> ProbeReport:
    """Probe each of ``encoders`` (name → encoder in eval mode, where it describes its source)
    on ``split`` (see the module docstring)."""
    paths = split.train.paths + split.test.paths
    labels = np.concatenate([split.train.labels, split.test.labels])
    features = extract_features(
        {name: encoder for name, (encoder, _) in encoders.items()},
        paths,
        image_size,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    rows = np.array(features.rows, dtype=np.int64)
    is_train = rows < len(split.train.paths)
    train_labels, test_labels = labels[rows[is_train]], labels[rows[~is_train]]
    if not len(rows):
        raise ProbeError(f"no readable image in {split.folder} ({len(paths)} unreadable)")
    if len(np.unique(train_labels)) < 2 or not len(test_labels):
        raise ProbeError(
            f"{split.folder}: too few readable images to probe ({len(train_labels)} train in "
            f"{len(np.unique(train_labels))} classes, {len(test_labels)} test); a probe needs "
            "2 classes to train on and a test image"
        )
    majority = int(np.bincount(train_labels).argmax())
    scores = {}
    for name, (_, source) in encoders.items():
        vectors = features.vectors[name]
        scored = fit_probe(
            vectors[is_train], train_labels, vectors[~is_train], test_labels, settings
        )
        scores[name] = scored | {"source": source}

    def counts(chosen: np.ndarray) -> dict[str, int]:
        return {name: int((chosen == i).sum()) for i, name in enumerate(split.train.classes)}

    return ProbeReport(
        folder=split.folder,
        how=split.how,
        classes=split.train.classes,
        train_images=counts(train_labels),
        test_images=counts(test_labels),
        image_size=image_size,
        chance=float((test_labels == majority).mean()),
        majority_class=split.train.classes[majority],
        scores=scores,
        unreadable={str(paths[i]): reason for i, reason in features.skipped.items()},
        settings=settings,
    )


def baselines(
    trained: GoogLeNetEncoder, settings: ProbeSettings
) -> tuple[dict[str, tuple[GoogLeNetEncoder, str]], dict[str, str]]:
    """The encoders to compare ``trained`` with (name → (encoder, source)), and those that
    cannot be built (name → why): a random init of its architecture (``settings.seed``), and
    ImageNet's GoogLeNet when its weights resolve."""
    encoders, skipped = {}, {}
    if settings.random_init:
        with torch.random.fork_rng(devices=[]):  # same seed, same random encoder
            torch.manual_seed(settings.seed)
            random = GoogLeNetEncoder(trained.net.fc.out_features)
        random.net.transform_input = trained.net.transform_input
        encoders["random_init"] = (random.eval(), f"GoogLeNet's init, seed {settings.seed}")
    else:
        skipped["random_init"] = "not asked (probe_settings.random_init=false)"
    if not settings.imagenet:
        skipped["imagenet"] = "not asked (probe_settings.imagenet=false)"
        return encoders, skipped
    weights = settings.imagenet_weights
    try:
        imagenet = GoogLeNetEncoder(1, None if weights else "imagenet", weights_path=weights)
    except WeightsNotFoundError as err:
        skipped["imagenet"] = (
            f"no ImageNet weights: {err} (for the probe, a local file is given as "
            "probe_settings.imagenet_weights=FILE)"
        )
    except ValueError as err:  # a file that is no GoogLeNet
        raise ProbeError(f"probe_settings.imagenet_weights={weights}: {err}") from err
    else:
        source = weights or "torchvision GoogLeNet_Weights.IMAGENET1K_V1"
        encoders["imagenet"] = (imagenet.eval(), source)
    return encoders, skipped


def probe_checkpoint(
    ckpt: str | Path,
    split: ProbeSplit,
    settings: ProbeSettings = ProbeSettings(),
    image_size: int | str = "auto",
    device: str = "auto",
    batch_size: int = 64,
    num_workers: int = 2,
    progress: bool = True,
) -> ProbeReport:
    """Probe the encoder of ``ckpt`` and its ``baselines`` on ``split``, at the training run's
    image size when ``image_size`` is ``auto``."""
    trained = load_encoder(ckpt).encoder
    others, skipped = baselines(trained, settings)
    encoders = {"trained": (trained, str(ckpt)), **others}
    target = resolve_device(device)
    for encoder, _ in encoders.values():
        encoder.to(target)
    report = probe_encoders(
        encoders,
        split,
        resolve_image_size(image_size, ckpt),
        settings,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    report.skipped_encoders = skipped
    return report
