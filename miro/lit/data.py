"""LightningDataModule over a dataset built by ``data_pipeline.build``, with text targets."""

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

from miro.text.targets import TextEmbedder, TextTargets, fit_text_targets

log = logging.getLogger(__name__)

MANIFEST = "manifest.parquet"
SPLITS = ("train", "val", "test")


class DatasetNotFoundError(FileNotFoundError):
    """``dataset_dir`` holds no dataset built by ``data_pipeline.build``."""


@dataclass
class RetrievalQueries:
    """Text queries over one split: their words, text-space vectors and relevant posts."""

    words: list[str]
    vectors: np.ndarray  # (Q, D)
    relevance: np.ndarray  # (Q, N) bool over the split's posts, in dataset order


class PostImages(Dataset):
    """Cached post images with their text targets; items are ``(image, target, index)``."""

    def __init__(self, paths: Sequence[Path], targets: np.ndarray, transform: v2.Transform):
        self.paths = list(paths)
        self.targets = torch.from_numpy(targets)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image = decode_image(str(self.paths[index]), mode=ImageReadMode.RGB)
        return self.transform(image), self.targets[index], index


def read_manifest(dataset_dir: Path) -> dict[str, list]:
    """The manifest's columns, or a clear error saying how to make a dataset."""
    path = dataset_dir / MANIFEST
    if not path.is_file():
        raise DatasetNotFoundError(
            f"no dataset at {dataset_dir} ({MANIFEST} is missing). Make one with either\n"
            f"  python -m data_pipeline.scrape out=RAW && "
            f"python -m data_pipeline.build raw=RAW out={dataset_dir}\n"
            f"or, offline:\n"
            f"  python -m data_pipeline.synthetic out=RAW && "
            f"python -m data_pipeline.build raw=RAW out={dataset_dir}\n"
            "then pass data.dataset_dir=DIR"
        )
    return pq.read_table(path, columns=["id", "split", "caption", "image"]).to_pydict()


class InstagramDataModule(pl.LightningDataModule):
    """Images of a built dataset paired with the text-model vectors of their captions.

    The text model is fitted on the training captions once (``prepare_data``, rank 0) and
    cached under ``cache_dir`` by what produced it.

    Args:
        dataset_dir: output of ``data_pipeline.build``.
        text: an unfitted text embedder (e.g. ``TopicEmbedder``).
        cache_dir: where fitted text models and targets are cached.
        image_size: side of the square crops fed to the encoder.
        batch_size: images per batch and device.
        num_workers: data-loading processes.
        min_crop_scale: smallest area fraction of a random training crop.
        queries: words or phrases whose text-to-image retrieval is evaluated; a post is
            relevant when its caption holds every word of the query.
        loss: the training loss (``miro.losses``); its ``prepare_targets`` puts the query
            vectors in the space where its ``to_text_space`` puts images. None: queries as
            the text model gives them.
    """

    def __init__(
        self,
        dataset_dir: str,
        text: TextEmbedder,
        cache_dir: str,
        image_size: int = 224,
        batch_size: int = 32,
        num_workers: int = 2,
        min_crop_scale: float = 0.5,
        queries: Sequence[str] = (),
        loss: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.dataset_dir = Path(dataset_dir)
        self.manifest = read_manifest(self.dataset_dir)
        self.text = text
        self.cache_dir = Path(cache_dir)
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.min_crop_scale = min_crop_scale
        self.query_texts = list(queries)
        self.loss = loss
        self.targets: TextTargets | None = None
        self.datasets: dict[str, PostImages] = {}
        self.queries: dict[str, RetrievalQueries] = {}

    def prepare_data(self) -> None:
        fit_text_targets(self.text, *self._text_inputs(), self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.targets = fit_text_targets(self.text, *self._text_inputs(), self.cache_dir)
        if self.trainer is not None and self.trainer.is_global_zero:  # keep it with the run
            run_dir = Path(self.trainer.default_root_dir)
            shutil.copytree(self.targets.directory, run_dir / "text_model", dirs_exist_ok=True)
        splits = np.array(self.manifest["split"])
        images = np.array([self.dataset_dir / path for path in self.manifest["image"]])
        for split in SPLITS:
            rows = np.flatnonzero(splits == split)
            transform = self._train_transform() if split == "train" else self._eval_transform()
            self.datasets[split] = PostImages(images[rows], self.targets.vectors[rows], transform)
        self.queries = {split: self.retrieval_queries(split) for split in ("val", "test")}
        log.info(
            "dataset %s: %s posts",
            self.dataset_dir,
            ", ".join(f"{len(self.datasets[s])} {s}" for s in SPLITS),
        )

    def retrieval_queries(self, split: str) -> RetrievalQueries:
        """The configured queries over ``split`` that the text model knows every word of."""
        embedder = self.targets.embedder
        captions = [set(embedder.tokenizer(caption)) for caption in self._column("caption", split)]
        words, relevance = [], []
        for query in self.query_texts:
            tokens = set(embedder.tokenizer(query))
            if tokens and all(embedder.knows(token) for token in tokens):
                words.append(query)
                relevance.append([tokens <= caption for caption in captions])
        if not words:
            raise ValueError(
                f"none of data.queries={self.query_texts} is in the text model's vocabulary; "
                "choose words that occur in the training captions"
            )
        skipped = sorted(set(self.query_texts) - set(words))
        if skipped:
            log.info("retrieval queries outside the text vocabulary, skipped: %s", skipped)
        vectors = embedder.transform(words)
        if self.loss is not None:
            vectors = self.loss.prepare_targets(torch.from_numpy(vectors)).numpy()
        return RetrievalQueries(words, vectors, np.array(relevance, dtype=bool))

    def ids(self, split: str) -> list[str]:
        """Post ids of ``split``, in the order its dataloader yields them."""
        return self._column("id", split)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def _column(self, name: str, split: str) -> list:
        splits = self.manifest["split"]
        return [value for value, s in zip(self.manifest[name], splits, strict=True) if s == split]

    def _text_inputs(self) -> tuple[list[str], list[str], list[str]]:
        return self.manifest["id"], self.manifest["split"], self.manifest["caption"]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(self.datasets[split]) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def _train_transform(self) -> v2.Transform:
        return v2.Compose(
            [
                v2.RandomResizedCrop(
                    self.image_size, scale=(self.min_crop_scale, 1.0), antialias=True
                ),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )

    def _eval_transform(self) -> v2.Transform:
        return v2.Compose(
            [
                v2.Resize(self.image_size, antialias=True),
                v2.CenterCrop(self.image_size),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )
