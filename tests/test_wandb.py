"""The W&B dashboard of a training run, read back from the offline run's own files."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
from conftest import wandb_run_records
from hydra.utils import instantiate
from PIL import Image
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from miro.lit.loggers import wandb_logger
from miro.lit.media import DashboardMedia, retrieval_sheets
from miro.lit.text_supervised import RankedQueries
from miro.train import train

TINY = [
    "text=lda",  # its table of topics is one of the media checked below
    "loss=sigmoid_ce",
    "data.image_size=32",
    "data.batch_size=16",
    "data.num_workers=0",
    "text.num_topics=5",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=2",
    "+trainer.num_sanity_val_steps=0",
    "+trainer.enable_progress_bar=false",
    "test=false",
]


def history_of(records: list[dict]) -> list[dict]:
    return [record["history"]["item"] for record in records if record["type"] == "history"]


def test_offline_run_holds_metrics_config_topics_and_retrievals(
    compose_train, synthetic_dataset, monkeypatch
):
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    cfg = compose_train(f"data.dataset_dir={synthetic_dataset}", "logger.wandb.offline=true", *TINY)
    train(cfg)

    (run_dir,) = (Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*")
    records = wandb_run_records(run_dir)
    history = history_of(records)
    logged = {key for item in history for key in item}
    stable = ["train/loss", "val/loss", "val/map", "val/map_chance", "val/p_at_5"]
    assert set(stable) <= logged, sorted(logged)

    config = {}  # the resolved config, as log_hyperparams sent it
    for record in records:
        if record["type"] == "config":
            config.update(record["config"]["update"])
    assert config["text"]["num_topics"] == 5
    assert config["module"]["_target_"] == "miro.lit.text_supervised.TextSupervisedEncoder"
    assert config["paths"]["output_dir"] == cfg.paths.output_dir

    (table_item,) = [item for item in history if "text/model.path" in item]
    assert table_item["text/model._type"] == "table-file"
    table = json.loads((run_dir / "files" / table_item["text/model.path"]).read_text())
    assert table["columns"] == ["topic", "top words"]
    assert [row[0] for row in table["data"]] == list(range(5))
    assert all(len(row[1].split()) == 10 for row in table["data"])

    sheets = [item for item in history if "val/retrievals.filenames" in item]
    assert len(sheets) == 2, "one set of retrieval sheets per validation epoch (no sanity check)"
    for item in sheets:
        assert item["val/retrievals._type"] == "images/separated"
        assert item["val/retrievals.count"] == 4
        for caption in item["val/retrievals.captions"]:
            assert re.fullmatch(r"\w+: [0-8] of the top 8 relevant", caption), caption
        for filename in item["val/retrievals.filenames"]:
            with Image.open(run_dir / "files" / filename) as sheet:
                assert sheet.width > 8 * 96 and sheet.height > 96


def test_checkpoints_go_to_wandb_only_when_online(tmp_path):
    offline = wandb_logger(offline=True, log_model=True, save_dir=str(tmp_path))
    online = wandb_logger(offline=False, log_model="all", save_dir=str(tmp_path))
    assert offline._log_model is False
    assert online._log_model == "all"
    with pytest.raises(MisconfigurationException):  # what wandb_logger spares an offline run
        WandbLogger(offline=True, log_model=True, save_dir=str(tmp_path))


def test_dashboard_media_skips_a_module_without_rankings(tmp_path):
    logger = wandb_logger(offline=True, save_dir=str(tmp_path))
    trainer = pl.Trainer(logger=logger, accelerator="cpu", enable_progress_bar=False)
    callback = instantiate({"_target_": "miro.lit.media.DashboardMedia"})
    assert isinstance(callback, DashboardMedia)
    callback.on_validation_end(trainer, pl.LightningModule())
    callback.on_fit_start(trainer, pl.LightningModule())  # no data module, no text model
    assert logger._experiment is None, "nothing to show, so no W&B run was even started"


def test_retrieval_sheet_shows_the_ranked_images_best_first(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    paths = []
    for index, colour in enumerate(colours):
        paths.append(tmp_path / f"{index}.png")
        Image.new("RGB", (40, 40), colour).save(paths[-1])
    retrieval = RankedQueries(
        split="val",
        words=["star", "moon"],
        rankings=np.array([[2, 0, 1], [1, 2, 0]]),
        relevance=np.array([[True, False, False], [False, False, True]]),
    )
    sheets = retrieval_sheets(retrieval, paths, queries=1, top_k=2, cell_size=32)
    assert [caption for caption, _ in sheets] == ["star: 1 of the top 2 relevant"]
    sheet = sheets[0][1]
    pad, cell = 8, 32  # miro.report.sheets.labelled_grid's layout
    first, second = (sheet.getpixel((pad + i * (cell + pad) + cell // 2, pad + 16)) for i in (0, 1))
    assert (first, second) == (colours[2], colours[0])
