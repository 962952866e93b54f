"""LightningModule: an image encoder learns to predict the text embedding of its caption."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from miro.retrieval.metrics import mean_overlap, score_retrieval
from miro.retrieval.store import cosine_ranking


@dataclass
class RankedQueries:
    """The last evaluation's text-to-image rankings, for callbacks that show them."""

    split: str
    words: list[str]
    rankings: np.ndarray  # (Q, M) positions in ``datamodule.datasets[split]``, best first
    relevance: np.ndarray  # (Q, N) bool over the positions of ``datamodule.datasets[split]``


class TextSupervisedEncoder(pl.LightningModule):
    """Train ``encoder`` so that ``loss(encoder(image), text_target)`` falls; evaluate by
    text-to-image retrieval over the whole validation/test split (gathered across ranks):
    ``{split}/map`` and ``{split}/p_at_5``, each beside its ``_chance``; the rankings stay in
    ``last_retrieval`` for callbacks.

    Args:
        encoder: images ``(B, 3, H, W)`` in [0, 1] → outputs ``(B, D)``.
        loss: compares outputs with targets and maps outputs into the text space.
        optimizer: ``params → Optimizer`` (a partial).
        scheduler: ``optimizer → LRScheduler`` (a partial), stepped each epoch, or None.
    """

    def __init__(
        self,
        encoder: nn.Module,
        loss: nn.Module,
        optimizer: Callable,
        scheduler: Callable | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.loss = loss
        # Factories, not hyper-parameters: checkpoints stay loadable with weights_only=True.
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self._eval_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.last_retrieval: RankedQueries | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1] → their predictions in the text space ``(B, D)``."""
        return self.loss.to_text_space(self.encoder(images))

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        images, targets, _ = batch
        loss = self.loss(self.encoder(images), targets)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(images))
        return loss

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: tuple, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_validation_epoch_end(self) -> None:
        self._log_retrieval("val")

    def on_test_epoch_end(self) -> None:
        self._log_retrieval("test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Record what a loader needs beside the weights (read by
        ``miro.models.checkpoints.load_encoder``)::

            checkpoint["encoder"] = {"format": 1, "class": "miro.models.googlenet.GoogLeNetEncoder",
                "embed_dim": int, "transform_input": bool, "to_text_space": "<class path>",
                "text_model": {"class": "<class path>", "run_dir_path": "text_model/model",
                               "cache_path": "<absolute dir>"} or None}
        """

        def class_path(obj: object) -> str:
            return f"{type(obj).__module__}.{type(obj).__qualname__}"

        net = getattr(self.encoder, "net", None)
        meta = {"format": 1, "class": class_path(self.encoder), "to_text_space": None}
        if net is not None and hasattr(net, "fc"):
            meta["embed_dim"] = int(net.fc.out_features)
            meta["transform_input"] = bool(getattr(net, "transform_input", False))
        if hasattr(self.loss, "to_text_space"):
            meta["to_text_space"] = class_path(self.loss)
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        text = getattr(datamodule, "text", None)
        meta["text_model"] = None
        if text is not None:
            targets = getattr(datamodule, "targets", None)
            directory = getattr(targets, "directory", None)
            meta["text_model"] = {
                "class": class_path(text),
                # InstagramDataModule copies the fitted text model into <run dir>/text_model/.
                "run_dir_path": "text_model/model",
                "cache_path": str((directory / "model").resolve())
                if directory is not None
                else None,
            }
        checkpoint["encoder"] = meta

    def _eval_step(self, split: str, batch: tuple) -> None:
        images, targets, indices = batch
        outputs = self.encoder(images)
        self.log(
            f"{split}/loss", self.loss(outputs, targets), batch_size=len(images), sync_dist=True
        )
        self._eval_outputs.append((indices, self.loss.to_text_space(outputs)))

    def _log_retrieval(self, split: str) -> None:
        """mAP and P@5 of the split's text queries against every image the ranks saw."""
        indices = torch.cat([i for i, _ in self._eval_outputs])
        embeddings = torch.cat([e for _, e in self._eval_outputs]).float()
        self._eval_outputs.clear()
        # Distributed samplers pad ranks to equal length: gather, then keep each post once.
        indices = self.all_gather(indices).reshape(-1).cpu().numpy()
        embeddings = self.all_gather(embeddings).reshape(len(indices), -1).cpu().numpy()
        indices, first = np.unique(indices, return_index=True)
        queries = self.trainer.datamodule.queries[split]
        rankings = cosine_ranking(embeddings[first], queries.vectors)
        scores = score_retrieval(rankings, queries.relevance[:, indices])
        prefix = f"{split}/"
        means = scores.means(prefix) | scores.means_by_language(queries.languages, prefix)
        self.log_dict(means | mean_overlap(rankings, queries.labels, prefix), sync_dist=True)
        self.last_retrieval = RankedQueries(
            split, queries.words, indices[rankings], queries.relevance
        )
