"""Exact resumption of an interrupted training run, mid-epoch included.

A Lightning checkpoint holds the weights, the optimizer and the loop counters, but not what
decides the rest of the run's randomness: the process's random generators (dropout, random
crops drawn in the main process, the shuffling seed and the loader workers' seeds drawn when
an epoch's iterator starts) and how far the interrupted epoch had got. Lightning 2.6 restarts
a plain ``DataLoader`` from a fresh shuffle and trains only the batches the epoch had left, so
a run resumed mid-epoch sees other images than the run it continues.

Two pieces close the gap:

- ``RandomStateCheckpoint``, a callback: the torch (CPU and current CUDA device), numpy and
  Python generator states go into every checkpoint and come back when one is loaded.
- ``ResumableDataLoader``: a ``DataLoader`` that Lightning checkpoints (it has ``state_dict``
  and ``load_state_dict``): the random state its epoch started from and the batches it has
  handed out. Resumed, it starts that epoch again from the same state, so the shuffle and the
  workers' seeds are the same, replays the batches already trained on without giving them to
  the model, then puts the saved process state back: the run goes on where it stopped, with
  the numbers it would have had. Replaying costs data loading only, which runs 40-60x faster
  than training (benchmarks/RESULTS.md).

Usage::

    trainer = pl.Trainer(callbacks=[RandomStateCheckpoint(), ModelCheckpoint(save_last=True)])
    loader = ResumableDataLoader(dataset, batch_size=32, shuffle=True, num_workers=2)
    trainer.fit(module, train_dataloaders=loader, ckpt_path="last")

Give validation and test loaders a generator of their own (``DataLoader(...,
generator=torch.Generator())``): making their iterators then draws nothing from the process's
generators. Otherwise a resumed run, whose first validation is not the (``isolate_rng``)
sanity check, draws a worker seed the original run did not.

Under DDP every rank restores rank 0's saved states: ranks are seeded alike and draw alike
(``pl.seed_everything``; ``DistributedSampler`` shuffles by seed and epoch, not by the
generators), so rank 0's states are every rank's. With ``Trainer(limit_train_batches=n)`` a
checkpoint taken on the n-th batch of an epoch resumes by replaying that epoch's shuffle
instead of drawing the next one (the loader does not know the limit).
"""

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader


def capture_random_state() -> dict[str, Any]:
    """The process's random generator states, as plain values and tensors (a checkpoint with
    them still loads with ``torch.load(..., weights_only=True)``)."""
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": numpy_state["state"]["key"].tolist(),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this rank's device
    return state


def restore_random_state(state: dict[str, Any]) -> None:
    """Put back what ``capture_random_state`` captured."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    key = np.array(numpy_state["key"], dtype=np.uint32)
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": key, "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


class RandomStateCheckpoint(pl.Callback):
    """Saves the random generator states in each checkpoint and restores them on resume.

    Restored as soon as Lightning loads the checkpoint: what runs between loading and the
    next training batch (setting up, the sanity check, which Lightning runs inside
    ``isolate_rng``, a validation whose loader has its own generator) draws nothing, so
    training goes on from the saved states.
    """

    def state_dict(self) -> dict[str, Any]:
        return capture_random_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        restore_random_state(state_dict)


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` that a mid-epoch checkpoint resumes exactly (see the module's doc).

    Takes ``DataLoader``'s arguments. ``persistent_workers`` must stay False: a persistent
    worker's random stream runs on from one epoch into the next, out of a checkpoint's reach;
    fresh workers each epoch are seeded from the state the epoch starts from.

    ``state_dict()``: ``{"random_state": <the process's generator states when this epoch's
    first batch was asked for>, "batches": <batches handed out this epoch>}``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.persistent_workers:
            raise ValueError(
                "ResumableDataLoader(persistent_workers=True): a persistent worker's random "
                "stream cannot be checkpointed; pass persistent_workers=False"
            )
        self._epoch_random_state: dict[str, Any] | None = None
        self._batches = 0
        self._resume: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"random_state": self._epoch_random_state, "batches": self._batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume = state_dict

    def __iter__(self) -> Iterator:
        resume, self._resume = self._resume, None
        if resume is not None and resume["batches"] > len(self):
            raise ValueError(
                f"the checkpoint's epoch had handed out {resume['batches']} batches, but this "
                f"loader has {len(self)}: resume on the data the run was trained on"
            )
        if resume is not None and (
            resume["random_state"] is None or resume["batches"] == len(self)
        ):
            resume = None  # saved before the epoch began or after its last batch: a new one
        return self._epoch(resume)

    def _epoch(self, resume: dict[str, Any] | None) -> Iterator:
        # A generator: nothing below runs before the first batch is asked for, so the epoch
        # draws its shuffle and worker seeds where an uninterrupted run would, after the
        # validation Lightning may run between making this iterator and training on it.
        if resume is None:
            self._epoch_random_state = capture_random_state()
            self._batches = 0
            batches = super().__iter__()
        else:
            process_state = capture_random_state()  # as RandomStateCheckpoint restored it
            restore_random_state(resume["random_state"])
            self._epoch_random_state = resume["random_state"]
            self._batches = resume["batches"]
            batches = super().__iter__()
            for _ in range(self._batches):  # already trained on: drawn again, not used
                next(batches)
            restore_random_state(process_state)
        for batch in batches:
            self._batches += 1
            yield batch
