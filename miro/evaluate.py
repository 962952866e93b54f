"""Score a trained encoder by text-to-image retrieval on held-out posts (P@5 and mAP beside
chance): `python -m miro.evaluate ckpt=CKPT dataset_dir=DIR [split=test]`; or by a linear probe
of its frozen features on a labelled image folder (accuracy beside chance, a random-init
encoder and ImageNet's GoogLeNet): `python -m miro.evaluate ckpt=CKPT probe=DIR`."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from data_pipeline.manifest import DatasetNotFoundError
from miro.cli import exit_on, quote_non_ascii
from miro.devices import DeviceError
from miro.models.checkpoints import EncoderCheckpointError
from miro.retrieval.errors import RetrievalError
from miro.retrieval.evaluation import evaluate_encoder
from miro.retrieval.labelled import probe_split
from miro.retrieval.probe import probe_checkpoint
from miro.retrieval.queries import QueryError


def retrieval(cfg: DictConfig) -> float:
    """Score the queries on ``cfg.split``; prints and writes ``cfg.output``; the mAP."""
    evaluation = evaluate_encoder(
        cfg.ckpt,
        cfg.dataset_dir,
        OmegaConf.to_container(cfg.queries),
        split=cfg.split,
        labels=cfg.labels,
        k=cfg.k,
        image_size=cfg.image_size,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        device=cfg.device,
        text_model_dir=cfg.text_model_dir,
        progress=cfg.progress,
    )
    evaluation.write(Path(cfg.output))
    print(f"{evaluation.table()}\nwritten: {cfg.output}")
    return evaluation.metrics()[f"{cfg.split}/map"]


def probe(cfg: DictConfig) -> float:
    """The linear probe on ``cfg.probe``; prints and writes ``cfg.probe_output``; the trained
    encoder's test accuracy."""
    settings = instantiate(cfg.probe_settings)  # a bad value: ProbeSettings says which
    report = probe_checkpoint(
        cfg.ckpt,
        probe_split(cfg.probe, settings.test_fraction, settings.seed),
        settings,
        image_size=cfg.image_size,
        device=cfg.device,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        progress=cfg.progress,
    )
    report.write(Path(cfg.probe_output))
    print(f"{report.table()}\nwritten: {cfg.probe_output}")
    return report.scores["trained"]["accuracy"]


def on_command_line(key: str) -> bool:
    """Whether the user set ``key`` (rather than the config's default)."""
    return any(
        override.split("=", 1)[0].lstrip("+~") == key
        for override in HydraConfig.get().overrides.task
    )


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    with exit_on(
        RetrievalError, QueryError, EncoderCheckpointError, DatasetNotFoundError, DeviceError
    ):
        if cfg.ckpt is None:
            raise RetrievalError(
                "give the encoder checkpoint: ckpt=PATH (train one with "
                "`python -m miro.train +experiment=instagram_text`)"
            )
        accuracy = probe(cfg) if cfg.probe is not None else None
        if cfg.probe is None or on_command_line("dataset_dir"):
            return retrieval(cfg)
    return accuracy


if __name__ == "__main__":
    sys.argv[1:] = quote_non_ascii(sys.argv[1:])  # queries.star.fr=étoile: Hydra reads ASCII
    main()
