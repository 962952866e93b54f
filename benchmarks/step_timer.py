"""Timing of Lightning training steps after a warm-up, shared by the benchmarks."""

import time
from collections.abc import Sequence

import pytorch_lightning as pl


class StepTimer(pl.Callback):
    """Wall time from the start of optimizer step ``warmup`` to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:  # optimizer steps so far, across epochs
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


def timed_fit(
    module: pl.LightningModule,
    warmup: int,
    steps: int,
    callbacks: Sequence[pl.Callback] = (),
    **fit_kwargs,
) -> float:
    """Seconds of ``steps`` CPU training steps after ``warmup`` untimed ones (no logs, no
    checkpoints, no validation, only ``callbacks``); ``fit_kwargs`` go to ``Trainer.fit``."""
    timer = StepTimer(warmup)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=warmup + steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[*callbacks, timer],
    )
    trainer.fit(module, **fit_kwargs)
    return timer.end - timer.start
