"""What a researcher looks at in W&B beside the curves: the fitted text model as a table, and
after each validation a contact sheet of the images each of a few text queries ranks first.

Example::

    trainer = pl.Trainer(logger=wandb_logger(), callbacks=[DashboardMedia(queries=4, top_k=8)])
    trainer.fit(TextSupervisedEncoder(...), datamodule=InstagramDataModule(...))
    # W&B: "text/model" (one row a topic) once; "val/retrievals" (one sheet a query) each epoch
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from PIL import Image

from miro.report.sheets import labelled_grid, thumbnail


def retrieval_sheets(
    retrieval: Any,
    paths: Sequence[str | Path],
    queries: int = 4,
    top_k: int = 8,
    cell_size: int = 96,
) -> list[tuple[str, Image.Image]]:
    """One contact sheet for each of the first ``queries`` queries: its ``top_k`` images, best
    first, each labelled with its rank and whether its caption holds the query.

    Args:
        retrieval: ``split``, ``words`` (Q), ``rankings`` (Q, N) positions into ``paths``
            best first, ``relevance`` (Q, N) bool over those positions (as
            ``TextSupervisedEncoder.last_retrieval``).
        paths: the split's image files, by position.

    Returns:
        ``(caption, sheet)`` pairs, e.g. ``("star: 3 of the top 8 relevant", <image>)``.
    """
    sheets = []
    for query, word in enumerate(retrieval.words[:queries]):
        top = np.asarray(retrieval.rankings[query][:top_k])
        relevant = np.asarray(retrieval.relevance[query], dtype=bool)
        cells = [
            (
                f"#{rank} relevant" if relevant[position] else f"#{rank}",
                thumbnail(Path(paths[position]), cell_size),
            )
            for rank, position in enumerate(top, start=1)
        ]
        caption = f"{word}: {int(relevant[top].sum())} of the top {len(top)} relevant"
        sheets.append((caption, labelled_grid(cells, columns=top_k, cell_size=cell_size)))
    return sheets


class DashboardMedia(pl.Callback):
    """Logs the text model's ``describe()`` table once when fitting starts (``text/model``) and,
    after each validation, contact sheets of sample retrievals (``val/retrievals``).

    Only loggers that can show them get them (``log_table``/``log_image``: W&B); a module
    without ``last_retrieval`` or a data module without a text model is skipped quietly.

    Args:
        queries: how many of the validation queries get a sheet (the first ones configured).
        top_k: images shown per query.
        cell_size: side of each thumbnail, pixels.
    """

    def __init__(self, queries: int = 4, top_k: int = 8, cell_size: int = 96) -> None:
        self.queries = queries
        self.top_k = top_k
        self.cell_size = cell_size

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loggers = [logger for logger in trainer.loggers if hasattr(logger, "log_table")]
        targets = getattr(trainer.datamodule, "targets", None)
        embedder = getattr(targets, "embedder", None)
        if not loggers or embedder is None or not trainer.is_global_zero:
            return
        summary = embedder.describe()
        for logger in loggers:
            logger.log_table(key="text/model", columns=summary.columns, data=summary.rows)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Not on_validation_epoch_end: callbacks run before the module's, which sets the rankings.
        loggers = [logger for logger in trainer.loggers if hasattr(logger, "log_image")]
        retrieval = getattr(pl_module, "last_retrieval", None)
        if trainer.sanity_checking or not trainer.is_global_zero or not loggers:
            return
        if retrieval is None or not len(retrieval.words):
            return
        paths = trainer.datamodule.datasets[retrieval.split].paths
        sheets = retrieval_sheets(retrieval, paths, self.queries, self.top_k, self.cell_size)
        captions, images = zip(*sheets, strict=True)
        for logger in loggers:
            logger.log_image(
                key=f"{retrieval.split}/retrievals",
                images=list(images),
                caption=list(captions),
                step=trainer.global_step,
            )
