"""Channels-last (NHWC) weights for training.

cuDNN's tensor-core convolutions under mixed precision work in NHWC, and so do oneDNN's fastest
CPU convolutions: a text-supervised GoogLeNet step (128 px, batch 32) takes about 0.76× the NCHW
time on a CPU (``benchmarks/train_throughput.py`` against its ``--nchw``). A convolution whose
weight is channels-last returns channels-last activations whatever its input's layout, so
converting the weights once makes the layers that follow run NHWC without a transpose around
each conv (PyTorch's "Channels Last Memory Format" tutorial).
"""

from collections.abc import Sequence

import pytorch_lightning as pl
import torch


class ChannelsLast(pl.Callback):
    """Store the LightningModule's 4-D parameters and buffers channels-last before it trains,
    when the trainer runs on one of ``device_types``.

    It converts at ``setup``: before the strategy moves the module to its device (which keeps
    the layout), wraps it for DDP, restores a checkpoint into it (copies, layout kept) and
    builds the optimizer, so all of them see the final tensors. Parameters stay the same
    objects; only their strides change, and checkpoints load into NCHW models as they are.

    Args:
        device_types: the ``torch.device`` types on which to convert (``cuda`` and ``cpu`` by
            default); the style experiments convert on ``cuda`` only, since their CPU step is
            tuned in NCHW.

    Example::

        trainer = pl.Trainer(accelerator="gpu", callbacks=[ChannelsLast()])
    """

    def __init__(self, device_types: Sequence[str] = ("cuda", "cpu")) -> None:
        self.device_types = tuple(device_types)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.strategy.root_device.type in self.device_types:
            pl_module.to(memory_format=torch.channels_last)
