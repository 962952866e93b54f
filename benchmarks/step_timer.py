"""A Lightning callback that times training steps after a warm-up, shared by the benchmarks."""

import time

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
