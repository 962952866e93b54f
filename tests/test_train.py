"""The main command, end to end on synthetic posts: real configs, real Trainer, real CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from miro.eval import mean_average_precision
from miro.index import cosine_ranking
from miro.train import train

ROOT = Path(__file__).resolve().parents[1]
MOTIFS = ["star", "moon", "sun", "eye", "bird", "ladder", "spiral"]
QUICK = ["data.image_size=32", "data.batch_size=16", "data.num_workers=0", "text.num_topics=8"]


def held_out_label_map(cfg, datamodule, checkpoint: Path) -> tuple[float, float]:
    """Text-to-image mAP of motif-word queries over val+test posts, relevance = ground truth."""
    module = instantiate(cfg.module)
    module.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    module.eval()
    ground_truth = {}
    for line in (datamodule.dataset_dir.parent / "raw" / "ground_truth.jsonl").open():
        post = json.loads(line)
        ground_truth[post["shortcode"]] = set(post["motifs"])
    ids = datamodule.ids("val") + datamodule.ids("test")
    with torch.inference_mode():
        loaders = (datamodule.val_dataloader(), datamodule.test_dataloader())
        embeddings = [module(images) for loader in loaders for images, _, _ in loader]
    embeddings = torch.cat(embeddings).numpy()
    relevance = np.array([[motif in ground_truth[i] for i in ids] for motif in MOTIFS])
    queries = datamodule.targets.embedder.transform(MOTIFS)
    return mean_average_precision(cosine_ranking(embeddings, queries), relevance)


def fit(compose_train, dataset: Path, shuffle_targets: bool) -> tuple[float, float]:
    cfg = compose_train(
        f"data.dataset_dir={dataset}",
        "data.image_size=64",
        "text.num_topics=12",
        "trainer.max_epochs=32",
        "logger=none",
        "test=false",
    )
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    if shuffle_targets:  # the control: captions no longer belong to their images
        train_targets = datamodule.datasets["train"].targets
        order = torch.randperm(len(train_targets), generator=torch.Generator().manual_seed(0))
        datamodule.datasets["train"].targets = train_targets[order]
    module = instantiate(cfg.module)
    trainer = instantiate(
        cfg.trainer, logger=False, callbacks=[instantiate(cfg.callbacks.model_checkpoint)]
    )
    trainer.fit(module, datamodule=datamodule)
    return held_out_label_map(
        cfg, datamodule, Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    )


@pytest.mark.slow
def test_encoder_learns_what_captions_say_about_images(compose_train, synthetic_dataset):
    score, chance = fit(compose_train, synthetic_dataset, shuffle_targets=False)
    assert score >= 2 * chance, f"mAP {score:.3f} vs chance {chance:.3f}"


@pytest.mark.slow
def test_with_shuffled_captions_the_same_check_fails(compose_train, synthetic_dataset):
    score, chance = fit(compose_train, synthetic_dataset, shuffle_targets=True)
    assert score < 2 * chance, f"mAP {score:.3f} vs chance {chance:.3f}"


def test_train_reports_retrieval_and_writes_checkpoints(compose_train, synthetic_dataset):
    cfg = compose_train(
        f"data.dataset_dir={synthetic_dataset}", "trainer.max_epochs=2", "logger=csv", *QUICK
    )
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert {"val/map", "val/map_chance", "test/map", "test/map_chance"} <= set(metrics)
    assert 0 < metrics["test/map_chance"] < 1
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("epoch*.ckpt"))) == 1
    assert (run / "text_model" / "targets.npy").is_file()
    assert "val/map" in (run / "csv" / "version_0" / "metrics.csv").read_text()
    assert json.loads((run / "metrics.json").read_text()) == pytest.approx(metrics)


def test_ddp_sim_trains_on_two_processes(compose_train, synthetic_dataset):
    cfg = compose_train(
        f"data.dataset_dir={synthetic_dataset}",
        "trainer=ddp_sim",
        "trainer.max_epochs=1",
        "logger=none",
        "test=false",
        *QUICK,
    )
    metrics = train(cfg)
    assert 0 <= metrics["val/map"] <= 1
    assert (Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt").is_file()


def test_standard_overrides_compose(compose_train):
    cfg = compose_train("trainer=gpu", "model.pretrained=imagenet", "text.num_topics=20")
    assert cfg.trainer.accelerator == "gpu"
    assert cfg.model.pretrained == "imagenet"
    assert cfg.model.embed_dim == 20
    assert compose_train("trainer=ddp").trainer.strategy == "ddp"


def run_cli(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return subprocess.run(
        [sys.executable, "-m", "miro.train", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_as_a_user_types_it(synthetic_dataset, tmp_path):
    """`python -m miro.train +experiment=instagram_text data.dataset_dir=...`, W&B offline."""
    overrides = [
        "+experiment=instagram_text",
        f"data.dataset_dir={synthetic_dataset}",
        "trainer.max_epochs=1",
        f"paths.root_dir={tmp_path}",
        *QUICK,
    ]
    first = run_cli(*overrides, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "text model fitted" in first.stdout + first.stderr
    assert "test text-to-image mAP" in first.stdout and "vs chance" in first.stdout
    run_dir = Path(first.stdout.split("outputs: ")[1].splitlines()[0])
    assert run_dir.is_relative_to(tmp_path / "outputs" / "instagram_text")
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert list((run_dir / "wandb").glob("offline-run-*"))

    second = run_cli(*overrides, cwd=ROOT)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "text model reused" in second.stdout + second.stderr
    assert "text model fitted" not in second.stdout + second.stderr


def test_cli_without_a_dataset_says_how_to_make_one(tmp_path):
    result = run_cli(
        "+experiment=instagram_text", f"data.dataset_dir={tmp_path / 'none'}", cwd=tmp_path
    )
    assert result.returncode != 0
    assert str(tmp_path / "none") in result.stderr
    assert "python -m data_pipeline.synthetic" in result.stderr
    assert "python -m data_pipeline.scrape" in result.stderr
    assert "Traceback" not in result.stderr
