"""Resuming and repeating runs: a training CLI killed mid-epoch (SIGKILL) and resumed with
``ckpt_path=last`` ends with the numbers of a run never stopped; so does a small Lightning fit
resumed from any of its checkpoints; the same config and seed give the same numbers twice."""

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import command_env, compose_config
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, Dataset

from miro.lit.resume import RandomStateCheckpoint, ResumableDataLoader
from miro.train import resolve_ckpt_path, train

ROOT = Path(__file__).resolve().parents[1]
SMALL = [
    "data.image_size=32",
    "data.batch_size=32",
    "data.num_workers=2",  # worker seeding is part of what must come back
    "text.num_topics=8",
    "trainer.max_epochs=2",
    "+trainer.enable_progress_bar=false",
    "logger=none",
]
# last.ckpt every 4 steps instead of every 2000, so a short epoch has several.
EVERY_4_STEPS = ["callbacks.last_checkpoint.every_n_train_steps=4"]


def cli(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "miro.train", *overrides]


def run_cli(*overrides: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        cli(*overrides), cwd=ROOT, env=command_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def kill_mid_epoch(overrides: list[str], last: Path, steps_per_epoch: int) -> dict:
    """Run the CLI and SIGKILL it once ``last`` holds a step inside its second epoch; returns
    that checkpoint. Each new ``last`` pauses the run (SIGSTOP) while it is read, so the kill
    lands right after the checkpoint it was decided on."""
    output = (last.parents[2] / "killed.out").open("w")  # a file: a full pipe would stall it
    process = subprocess.Popen(
        cli(*overrides), cwd=ROOT, env=command_env(), stdout=output, stderr=subprocess.STDOUT
    )
    seen = None
    try:
        while process.poll() is None:
            time.sleep(0.02)
            stamp = last.stat().st_mtime_ns if last.is_file() else None
            if stamp is None or stamp == seen:
                continue
            seen = stamp
            process.send_signal(signal.SIGSTOP)
            checkpoint = torch.load(last, map_location="cpu", weights_only=True)
            if checkpoint["global_step"] > steps_per_epoch:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return checkpoint
            process.send_signal(signal.SIGCONT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.close()
    log = (last.parents[2] / "killed.out").read_text()
    raise AssertionError(f"the run ended before its second epoch:\n{log[-3000:]}")


def test_run_killed_mid_epoch_resumes_to_the_same_numbers(synthetic_dataset, tmp_path):
    overrides = [
        "+experiment=instagram_text",
        f"data.dataset_dir={synthetic_dataset}",
        f"paths.root_dir={tmp_path}",
        *SMALL,
        *EVERY_4_STEPS,
    ]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_cli(*overrides, f"hydra.run.dir={whole}")
    steps = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    steps_per_epoch = steps // 2

    last = killed / "checkpoints" / "last.ckpt"
    checkpoint = kill_mid_epoch([*overrides, f"hydra.run.dir={killed}"], last, steps_per_epoch)
    assert checkpoint["epoch"] == 1
    assert 0 < checkpoint["global_step"] - steps_per_epoch < steps_per_epoch  # mid-epoch
    assert not (killed / "metrics.json").exists()

    resumed = run_cli(*overrides, f"hydra.run.dir={killed}", "ckpt_path=last")
    assert f"resuming from {last}" in resumed.stdout + resumed.stderr
    expected = json.loads((whole / "metrics.json").read_text())
    assert expected["val/map"] > 0
    assert json.loads((killed / "metrics.json").read_text()) == pytest.approx(expected, abs=1e-6)


def test_same_config_and_seed_give_the_same_numbers(synthetic_dataset, tmp_path, one_torch_thread):
    """Two in-process runs, loader workers included: equal metrics, to the last bit."""
    overrides = [
        "+experiment=instagram_text",
        f"data.dataset_dir={synthetic_dataset}",
        *SMALL,
        "trainer.max_epochs=1",
    ]
    first = train(compose_config("train", overrides, tmp_path / "first"))
    second = train(compose_config("train", overrides, tmp_path / "second"))
    assert {"val/map", "test/map", "train/loss"} <= set(first)
    assert second == first


def test_ckpt_path_last_without_a_checkpoint_starts_fresh(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="miro.train"):
        assert resolve_ckpt_path("last", tmp_path) is None
    assert f"no checkpoint at {tmp_path / 'checkpoints' / 'last.ckpt'}" in caplog.text
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").touch()
    assert resolve_ckpt_path("last", tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
    assert resolve_ckpt_path("other.ckpt", tmp_path) == "other.ckpt"
    assert resolve_ckpt_path(None, tmp_path) is None


class NoisyPoints(Dataset):
    """24 fixed points, each read with fresh noise from torch's generator: an augmentation."""

    def __init__(self) -> None:
        self.points = torch.randn(24, 8, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.points[index] + 0.1 * torch.randn(8)


class DropoutRegressor(pl.LightningModule):
    """A small net with dropout, pulled toward zero output: every step draws random numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 1))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.net(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_points(loader_class, workers: int, checkpoints: Path, ckpt_path=None) -> torch.Tensor:
    """Two epochs of 6 steps, a checkpoint after every step; the final weights, flattened."""
    pl.seed_everything(0, workers=True)
    module = DropoutRegressor()
    loader = loader_class(NoisyPoints(), batch_size=4, shuffle=True, num_workers=workers)
    every_step = ModelCheckpoint(checkpoints, "{step}", every_n_train_steps=1, save_top_k=-1)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        callbacks=[RandomStateCheckpoint(), every_step],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=loader, ckpt_path=ckpt_path)
    return torch.cat([parameter.detach().flatten() for parameter in module.parameters()])


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # resumed into a fresh dir
@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before")
@pytest.mark.parametrize(
    ("loader_class", "workers", "step", "same"),
    [
        (ResumableDataLoader, 0, 3, True),  # mid-epoch
        (ResumableDataLoader, 0, 6, True),  # the epoch's last batch
        (ResumableDataLoader, 0, 8, True),  # mid-epoch, second epoch
        (ResumableDataLoader, 2, 8, True),  # worker processes' seeds too
        (DataLoader, 0, 8, False),  # the control: Lightning reshuffles a plain loader
    ],
)
def test_fit_resumed_from_any_checkpoint_ends_where_the_whole_fit_did(
    loader_class, workers, step, same, tmp_path
):
    whole = fit_points(loader_class, workers, tmp_path / "whole")
    checkpoint = tmp_path / "whole" / f"step={step}.ckpt"
    resumed = fit_points(loader_class, workers, tmp_path / "resumed", ckpt_path=checkpoint)
    assert torch.equal(resumed, whole) == same
