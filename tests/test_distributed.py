"""Data-parallel training on two CPU processes: in this process with ``ddp_spawn``
(``trainer=ddp_sim``), and from the real CLI with ``trainer.strategy=ddp``, which Lightning
re-launches once per rank."""

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from conftest import compose_config, run_module
from hydra.utils import instantiate
from torch.utils.data import Subset

from miro.train import train

QUICK = [
    "data.image_size=32",
    "data.batch_size=16",
    "data.num_workers=0",
    "text.num_topics=8",
]


@pytest.fixture(scope="module")
def ddp_sim_run(synthetic_dataset, tmp_path_factory):
    """One epoch of ``trainer=ddp_sim`` (2 processes, ``ddp_spawn``): its config and metrics."""
    cfg = compose_config(
        "train",
        [
            "+experiment=instagram_text",
            f"data.dataset_dir={synthetic_dataset}",
            "trainer=ddp_sim",
            "trainer.max_epochs=1",
            # A full epoch pulls every image toward the mean caption: scores ~1e-6 apart, whose
            # order float noise of another batch split can swap. Two steps keep them apart.
            "+trainer.limit_train_batches=2",
            "logger=none",
            "test=false",
            *QUICK,
        ],
        tmp_path_factory.mktemp("ddp_sim"),
    )
    return cfg, train(cfg)


def test_ddp_sim_trains_on_two_processes(ddp_sim_run):
    cfg, metrics = ddp_sim_run
    assert 0 <= metrics["val/map"] <= 1
    assert (Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt").is_file()
    assert (Path(cfg.paths.output_dir) / "metrics.json").is_file()


def validate(cfg, checkpoint: Path, strategy: str, devices: int) -> dict[str, float]:
    """``trainer.validate`` of ``checkpoint`` on an odd number of validation posts, so that
    two ranks' ``DistributedSampler`` pads one of them with a repeated post."""
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    posts = len(datamodule.datasets["val"])
    datamodule.datasets["val"] = Subset(datamodule.datasets["val"], range(posts - 1 + posts % 2))
    trainer = instantiate(
        cfg.trainer,
        strategy=strategy,
        devices=devices,
        logger=False,
        callbacks=[],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (results,) = trainer.validate(instantiate(cfg.module), datamodule, ckpt_path=str(checkpoint))
    return results


# validate() builds a Trainer without the callbacks the checkpoint was trained with, on purpose.
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_retrieval_over_two_ranks_equals_one_process(ddp_sim_run):
    """Validation retrieval gathers every rank's embeddings and keeps each post once."""
    cfg, _ = ddp_sim_run
    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    one = validate(cfg, checkpoint, strategy="auto", devices=1)
    two = validate(cfg, checkpoint, strategy="ddp_spawn", devices=2)
    scores = [name for name in one if "map" in name or "p_at_" in name]
    assert "val/map" in scores
    for name in scores:
        assert two[name] == pytest.approx(one[name], abs=1e-6), name


def test_cli_ddp_ranks_share_one_run_dir_and_fit_the_text_model_once(synthetic_dataset, tmp_path):
    """Lightning re-runs the command for rank 1 with rank 0's Hydra run dir: both ranks log
    there, rank 0 alone writes the config, metrics and report, and the text model is fitted
    once (``prepare_data`` on rank 0) into an empty cache that rank 1 then reads."""
    result = run_module(
        "miro.train",
        "+experiment=instagram_text",
        f"data.dataset_dir={synthetic_dataset}",
        f"paths.root_dir={tmp_path}",
        "trainer.strategy=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "logger=csv",
        "+trainer.enable_progress_bar=false",
        *QUICK,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("outputs: ") == 1, result.stdout
    assert result.stdout.count("test text-to-image mAP") == 1
    (run_dir,) = (tmp_path / "outputs" / "instagram_text").glob("*/*")
    assert result.stdout.split("outputs: ")[1].splitlines()[0] == str(run_dir)
    assert {"train.log", "train_ddp_process_1.log", "metrics.json"} <= {
        path.name for path in run_dir.iterdir()
    }
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run_dir / "csv").iterdir())) == 1  # one logger version: rank 0's

    rank0 = (run_dir / "train.log").read_text()
    rank1 = (run_dir / "train_ddp_process_1.log").read_text()
    assert rank0.count("text model fitted") == 1
    assert "text model fitted" not in rank1
    assert "text model reused from cache" in rank1
    (artifact,) = (tmp_path / ".cache" / "miro" / "text").iterdir()
    assert (artifact / "targets.npy").is_file()  # one artifact, no staging dir left behind

    # The ranks split the training posts: each takes half of them (rounded up) per epoch.
    splits = pq.read_table(synthetic_dataset / "manifest.parquet", columns=["split"])
    half = math.ceil(splits["split"].to_pylist().count("train") / 2)
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == half // 16
