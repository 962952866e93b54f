"""LightningDataModule over a dataset built by ``data_pipeline.build``, with text targets."""

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from data_pipeline.manifest import SPLITS, DatasetNotFoundError, read_manifest
from miro.images import eval_transform, read_cached_image
from miro.lit.resume import ResumableDataLoader
from miro.retrieval.queries import (
    QueryError,
    RetrievalQueries,
    find_ground_truth,
    frequent_word_queries,
    post_labels,
    retrieval_queries,
)
from miro.text.targets import TextEmbedder, TextTargets, fit_text_targets

log = logging.getLogger(__name__)


class PostImages(Dataset):
    """Cached post images with their text targets; items are ``(image, target, index)``."""

    def __init__(self, paths: Sequence[Path], targets: np.ndarray, transform: v2.Transform):
        self.paths = list(paths)
        self.targets = torch.from_numpy(targets)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image = read_cached_image(self.paths[index])
        return self.transform(image), self.targets[index], index


def keep_languages(manifest: dict[str, list], languages: Sequence[str]) -> dict[str, list]:
    """The manifest's rows whose caption language is among ``languages``."""
    keep = [language in languages for language in manifest["language"]]
    if not any(keep):
        raise DatasetNotFoundError(
            f"no post of the dataset is in data.languages={list(languages)}; its languages "
            f"are {sorted(set(manifest['language']))}"
        )
    return {
        name: [value for value, kept in zip(column, keep, strict=True) if kept]
        for name, column in manifest.items()
    }


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
        queries: the text-to-image retrieval queries evaluated on val and test, as
            ``label → words`` or a list of words (``miro.retrieval.queries``).
        labels: what makes a post relevant to a query: ``auto`` (the synthetic set's ground
            truth when the dataset was built from one, else the caption), a ground-truth file,
            or None (the caption holds the query's words).
        loss: the training loss (``miro.losses``); its ``prepare_targets`` puts the query
            vectors in the space where its ``to_text_space`` puts images. None: queries as
            the text model gives them.
        languages: only the posts whose caption is in these languages, for training and
            validation (InstaBarcelona's language-separate treatment: a text model per
            language); None: every post.
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
        queries: Mapping[str, Sequence[str]] | Sequence[str] = (),
        labels: str | None = "auto",
        loss: nn.Module | None = None,
        languages: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.dataset_dir = Path(dataset_dir)
        self.manifest = read_manifest(self.dataset_dir)
        if languages:
            self.manifest = keep_languages(self.manifest, languages)
        self.text = text
        self.cache_dir = Path(cache_dir)
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.min_crop_scale = min_crop_scale
        self.query_spec = queries
        self.ground_truth = find_ground_truth(self.dataset_dir, labels)
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
            transform = (
                self._train_transform() if split == "train" else eval_transform(self.image_size)
            )
            self.datasets[split] = PostImages(images[rows], self.targets.vectors[rows], transform)
        self.queries = {split: self.retrieval_queries(split) for split in ("val", "test")}
        log.info(
            "dataset %s: %s posts",
            self.dataset_dir,
            ", ".join(f"{len(self.datasets[s])} {s}" for s in SPLITS),
        )

    def retrieval_queries(self, split: str) -> RetrievalQueries:
        """The configured queries over ``split`` that the text model knows every word of; when
        it knows none (another hashtag's posts), the training captions' most frequent words of
        each language, judged by caption: a run never stops over its metrics."""
        text_model, captions = self.targets.embedder, self._column("caption", split)
        prepare = getattr(self.loss, "prepare_targets", None)
        labels = post_labels(self.ground_truth, self.ids(split))
        try:
            queries = retrieval_queries(self.query_spec, text_model, captions, labels, prepare)
        except QueryError as err:
            spec = frequent_word_queries(
                text_model, self._column("caption", "train"), self._column("language", "train")
            )
            log.warning("%s\nvalidating with the data's most frequent words: %s", err, list(spec))
            queries = retrieval_queries(spec, text_model, captions, None, prepare)
        if queries.unknown:
            log.info("retrieval queries outside the text vocabulary, skipped: %s", queries.unknown)
        return queries

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
        dataset = self.datasets[split]
        options = {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "pin_memory": torch.cuda.is_available(),
        }
        if shuffle:  # training resumes mid-epoch exactly (miro.lit.resume)
            drop_last = len(dataset) > self.batch_size
            return ResumableDataLoader(dataset, shuffle=True, drop_last=drop_last, **options)
        # Its own generator: evaluating draws nothing from the training's random streams, so a
        # resumed run, whose first validation is not the sanity check's, draws as the first did.
        return DataLoader(
            dataset, persistent_workers=self.num_workers > 0, generator=torch.Generator(), **options
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
