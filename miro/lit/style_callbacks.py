"""What watches a stylizer train (``StyleTransferModule``), as Lightning callbacks: a grid of
sample stylizations after each validation, and a watchdog that stops a run whose losses
diverged or whose outputs collapsed to flat colour, naming the step and the knobs to turn.

Example (``conf/experiment/miro_style.yaml`` configures both)::

    trainer = pl.Trainer(callbacks=[StyleSampleGrid("run/samples"), DivergenceWatchdog()])
    trainer.fit(StyleTransferModule(...), datamodule=ContentImagesDataModule(...))
    # run/samples/epoch_000.png: a header of the style images, then content × every style
"""

import logging
import math
from pathlib import Path

import pytorch_lightning as pl
import torch
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import make_grid

from miro.images import save_image, to_array

log = logging.getLogger(__name__)


class StyleTrainingDiverged(RuntimeError):
    """The losses became NaN or infinite, or the stylizer's outputs collapsed to flat images."""


class StyleSampleGrid(pl.Callback):
    """After each validation (not the sanity check), the first ``num_samples`` validation images
    in every style as one grid: saved as ``<dirpath>/epoch_<NNN>.png`` when ``dirpath`` is set,
    and logged as ``val/samples`` to loggers that take images (W&B).

    Reads what the module's ``validation_step`` returns: the batch in every style,
    ``(num_styles, B, 3, H, W)`` in [0, 1].
    """

    def __init__(self, dirpath: str | None = None, num_samples: int = 4) -> None:
        self.dirpath = None if dirpath is None else Path(dirpath)
        self.num_samples = num_samples
        self._contents: list[torch.Tensor] = []
        self._stylized: list[torch.Tensor] = []

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        self._contents, self._stylized = [], []

    def on_validation_batch_end(
        self, trainer, pl_module, outputs: torch.Tensor, batch, batch_idx, dataloader_idx=0
    ) -> None:
        keep = self.num_samples - sum(len(content) for content in self._contents)
        if keep > 0 and outputs is not None:
            self._contents.append(batch[:keep].cpu())
            self._stylized.append(outputs[:, :keep].cpu())

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        if trainer.sanity_checking or not trainer.is_global_zero or not self._contents:
            return
        grid = sample_grid(
            torch.cat(self._contents),
            torch.cat(self._stylized, dim=1),
            pl_module.thumbnails,
            pl_module.first_trained,
        )
        if self.dirpath is not None:
            path = self.dirpath / f"epoch_{trainer.current_epoch:03d}.png"
            save_image(grid, path)
            log.info("sample stylizations: %s", path)
        caption = "content, " + ", ".join(pl_module.style_names)
        image = to_array(grid)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(
                    "val/samples", [image], step=trainer.global_step, caption=[caption]
                )


def sample_grid(
    contents: torch.Tensor,
    stylized: torch.Tensor,
    thumbnails: list[torch.Tensor],
    inherited: int = 0,
) -> torch.Tensor:
    """``(3, H, W)`` grid: a header row of the trained styles' ``thumbnails`` (blank above the
    content column and above the ``inherited`` styles of a fine-tune), then each content image
    ``(N, 3, h, w)`` beside its stylizations ``(S, N, 3, h, w)``."""
    size = list(contents.shape[2:])
    header = [torch.ones(3, *size)] * (inherited + 1)
    header += [TF.resize(thumbnail, size, antialias=True) for thumbnail in thumbnails]
    rows = [torch.stack(header)]
    rows += [torch.cat([content[None], stylized[:, n]]) for n, content in enumerate(contents)]
    return make_grid(torch.cat(rows).clamp(0, 1), nrow=len(header), padding=2, pad_value=1.0)


class DivergenceWatchdog(pl.Callback):
    """Stop training when a weighted loss becomes NaN or infinite, or when every output's
    per-channel std stays below ``collapse_std`` for ``collapse_patience`` steps in a row.

    Tracked on the device every step from what the module's ``training_step`` returns
    (``loss``, ``style``, ``content``: the weighted losses; ``flatness``: the largest
    per-channel std of the outputs); checked on the host only where Lightning syncs anyway
    (the steps the logger writes), before each validation and at the end of each epoch, so a
    step never waits for the GPU. The error names the step where it happened.
    """

    def __init__(self, collapse_std: float = 0.01, collapse_patience: int = 20) -> None:
        self.collapse_std = collapse_std
        self.collapse_patience = collapse_patience
        self._health: dict[str, torch.Tensor] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        device = pl_module.device
        self._health = {
            "bad_step": torch.tensor(-1, device=device),  # first non-finite loss
            "bad_values": torch.zeros(3, device=device),  # style, content, total there
            "flat_run": torch.tensor(0, device=device),  # flat steps in a row
            "collapse_step": torch.tensor(-1, device=device),  # where the run hit patience
        }

    def on_train_batch_end(self, trainer, pl_module, outputs: dict, batch, batch_idx) -> None:
        health, step = self._health, trainer.global_step - 1  # the step just taken
        values = torch.stack([outputs["style"], outputs["content"], outputs["loss"].detach()])
        first_bad = (health["bad_step"] < 0) & ~torch.isfinite(values.float()).all()
        health["bad_step"] = torch.where(first_bad, step, health["bad_step"])
        health["bad_values"] = torch.where(first_bad, values.float(), health["bad_values"])
        flat = outputs["flatness"] < self.collapse_std
        health["flat_run"] = (health["flat_run"] + 1) * flat
        collapsed = (health["collapse_step"] < 0) & (health["flat_run"] >= self.collapse_patience)
        health["collapse_step"] = torch.where(collapsed, step, health["collapse_step"])
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0:  # the logger syncs
            self.check(pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:  # before a checkpoint can keep diverged weights
            self.check(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(pl_module)

    def check(self, module: pl.LightningModule) -> None:
        """Raise ``StyleTrainingDiverged`` with the knobs to turn if training diverged or the
        outputs went flat."""
        if not self._health:
            return
        health = self._health
        steps = torch.stack([health["bad_step"], health["collapse_step"]])
        (bad_step, collapse_step), values = steps.tolist(), health["bad_values"].tolist()
        knobs = {
            "style": f"module.style_weight (now {module.style_weight:g})",
            "content": f"module.content_weight (now {module.content_weight:g})",
            "total": f"module.tv_weight (now {module.tv_weight:g})",
        }
        for (name, knob), value in zip(knobs.items(), values, strict=True):
            if bad_step >= 0 and not math.isfinite(value):
                raise StyleTrainingDiverged(
                    f"the weighted {name} loss became {value} at step {bad_step}: lower {knob} "
                    "or the learning rate module.optimizer.lr, and check the style images "
                    "decode to real pictures"
                )
        if collapse_step >= 0:
            raise StyleTrainingDiverged(
                f"the stylized images collapsed to flat colour (every output's per-channel std "
                f"< {self.collapse_std:g} for {self.collapse_patience} steps in a row, by step "
                f"{collapse_step}): lower module.style_weight (now {module.style_weight:g}) or "
                f"module.tv_weight (now {module.tv_weight:g}), or raise module.content_weight "
                f"(now {module.content_weight:g}); and check the content images are not blank"
            )
