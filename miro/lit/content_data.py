"""LightningDataModule of content photos for style transfer: any folder of images, or the
images of a dataset built by ``data_pipeline.build``. Batches are ``(B, 3, S, S)`` in [0, 1]."""

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from data_pipeline.manifest import MANIFEST_FILE, DatasetNotFoundError, read_manifest
from miro.images import UnreadableImageError, find_images, is_readable, read_image

log = logging.getLogger(__name__)


class ContentImagesNotFoundError(DatasetNotFoundError):
    """The content folder or dataset is missing, or holds no readable image."""


class ContentImages(Dataset):
    """Images of ``paths`` through ``transform``; the short side is first brought into
    ``[min_side, max_side]``. A file that fails to decode is replaced by the next one (with a
    warning), so one bad photo never stops a run."""

    def __init__(
        self, paths: Sequence[Path], transform: v2.Transform, min_side: int, max_side: int
    ) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.min_side, self.max_side = min_side, max_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        for offset in range(len(self.paths)):
            path = self.paths[(index + offset) % len(self.paths)]
            try:
                image = read_image(path, min_side=self.max_side)
            except UnreadableImageError as err:
                log.warning("skipping unreadable content image: %s", err)
                continue
            short = min(image.shape[1:])
            target = min(max(short, self.min_side), self.max_side)
            if target != short:
                image = TF.resize(image, [target], antialias=True)
            return self.transform(image)
        raise UnreadableImageError(f"none of the {len(self.paths)} content images decodes")


class VariedRandomCrop(nn.Module):
    """A random square crop that avoids flat patches: of ``attempts`` random crops, the first
    whose most varied channel has a spatial std of at least ``min_std`` (on the [0, 255] scale),
    else the most varied one.

    Why: instance norm maps a flat patch to zero with a gain of ``1/sqrt(eps)``; through the
    stylizer's dozen norms that gain overflows the gradients to NaN. Photos seldom have
    flat 256 px crops; posters, paintings and small crops do.
    """

    def __init__(self, size: int, min_std: float = 2.0, attempts: int = 10) -> None:
        super().__init__()
        self.crop = v2.RandomCrop(size)
        self.min_std, self.attempts = min_std, attempts

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        best, best_std = image, -1.0
        for _ in range(self.attempts):
            crop = self.crop(image)
            std = crop.float().flatten(1).std(dim=1).max().item()
            if std >= self.min_std:
                return crop
            if std > best_std:
                best, best_std = crop, std
        return best


class ContentImagesDataModule(pl.LightningDataModule):
    """Content photos: random crops (not flat ones) and flips for training, fixed center crops
    for validation.

    Training images keep their scale when their short side lies in ``[image_size,
    2 × image_size]``, and are resized into that range otherwise, so a crop shows a good part of
    a large photo rather than a patch of texture. Unreadable files are skipped and counted.

    Args:
        image_dir: any folder of images (jpg, png, webp, ...), searched recursively; takes
            precedence over ``dataset_dir``.
        dataset_dir: a dataset built by ``data_pipeline.build`` (its manifest's images).
        image_size: side of the square crops (a multiple of 4, as the stylizer needs).
        batch_size: images per batch and device.
        num_workers: data-loading processes.
        val_images: fixed validation images (the dataset's ``val`` split first; in a folder,
            evenly spaced picks, held out of training when there are enough images).
    """

    def __init__(
        self,
        image_dir: str | None = None,
        dataset_dir: str | None = None,
        image_size: int = 256,
        batch_size: int = 4,
        num_workers: int = 2,
        val_images: int = 4,
    ) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"data.image_size={image_size} must be a multiple of 4")
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        if image_dir is not None:
            self.source = Path(image_dir).expanduser()
            paths, val_first = self._folder_images(self.source), []
        elif dataset_dir is not None:
            self.source = Path(dataset_dir).expanduser()
            paths, val_first = self._dataset_images(self.source)
        else:
            raise ValueError("set data.image_dir=FOLDER (any photos) or data.dataset_dir=DIR")
        readable = [path for path in paths if is_readable(path)]
        log.info(
            "content images in %s: %d readable, %d unreadable skipped",
            self.source,
            len(readable),
            len(paths) - len(readable),
        )
        if not readable:
            raise ContentImagesNotFoundError(
                f"none of the {len(paths)} images in {self.source} can be read"
            )
        self.train_paths, self.val_paths = self._split(readable, val_first, val_images)
        self.datasets: dict[str, ContentImages] = {}

    def setup(self, stage: str | None = None) -> None:
        size = self.image_size
        train = v2.Compose(
            [
                VariedRandomCrop(size),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )
        val = v2.Compose([v2.CenterCrop(size), v2.ToDtype(torch.float32, scale=True)])
        self.datasets = {
            "train": ContentImages(self.train_paths, train, size, 2 * size),
            "val": ContentImages(self.val_paths, val, size, size),
        }

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    @staticmethod
    def _folder_images(folder: Path) -> list[Path]:
        paths = find_images(folder) if folder.is_dir() else []
        if not paths:
            what = "holds no images" if folder.is_dir() else "does not exist"
            raise ContentImagesNotFoundError(
                f"content folder {folder} {what}. Point data.image_dir at any folder of photos "
                "(jpg, png, webp, ...; searched recursively), or make synthetic ones offline:\n"
                f"  python -m data_pipeline.synthetic out={folder} num_posts=500 seed=0"
            )
        return paths

    @staticmethod
    def _dataset_images(dataset_dir: Path) -> tuple[list[Path], list[Path]]:
        """All manifest images, and those of the ``val`` split in manifest order."""
        try:
            columns = read_manifest(dataset_dir, columns=("split", "image"))
        except DatasetNotFoundError:
            raise ContentImagesNotFoundError(
                f"no dataset at {dataset_dir} ({MANIFEST_FILE} is missing). Either point "
                "data.image_dir=FOLDER at any folder of photos, or build a dataset, offline:\n"
                f"  python -m data_pipeline.synthetic out=RAW && "
                f"python -m data_pipeline.build raw=RAW out={dataset_dir}\n"
                "then pass data.dataset_dir=DIR"
            ) from None
        paths = [dataset_dir / image for image in columns["image"]]
        val = [path for path, split in zip(paths, columns["split"], strict=True) if split == "val"]
        return paths, val

    @staticmethod
    def _split(
        paths: list[Path], val_first: list[Path], count: int
    ) -> tuple[list[Path], list[Path]]:
        """Fixed validation images (``val_first`` that are readable, then evenly spaced picks)
        and the training images; validation is held out when enough images remain."""
        readable = set(paths)
        val = [path for path in val_first if path in readable][:count]
        if len(val) < count:
            rest = [path for path in paths if path not in set(val)]
            picks = np.linspace(0, len(rest) - 1, min(count - len(val), len(rest)))
            val += [rest[int(i)] for i in picks.round()]
        held_out = set(val)
        train = [path for path in paths if path not in held_out]
        if len(train) < max(len(val), 1):
            train = paths  # too few images to hold any out
        return train, val
