"""Score a trained encoder by text-to-image retrieval on held-out posts (P@5 and mAP beside
chance): `python -m miro.evaluate ckpt=CKPT dataset_dir=DIR [split=test]`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from miro.cli import quote_non_ascii
from miro.devices import DeviceError
from miro.dream.checkpoint import EncoderCheckpointError
from miro.lit.data import DatasetNotFoundError
from miro.queries import QueryError
from miro.retrieval.errors import RetrievalError
from miro.retrieval.evaluation import evaluate_encoder


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    if cfg.ckpt is None:
        raise SystemExit(
            "error: give the encoder checkpoint: ckpt=PATH (train one with "
            "`python -m miro.train +experiment=instagram_text`)"
        )
    try:
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
    except (
        RetrievalError,
        QueryError,
        EncoderCheckpointError,
        DatasetNotFoundError,
        DeviceError,
    ) as err:
        raise SystemExit(f"error: {err}") from None
    evaluation.write(Path(cfg.output))
    print(f"{evaluation.table()}\nwritten: {cfg.output}")
    return evaluation.metrics()[f"{cfg.split}/map"]


if __name__ == "__main__":
    sys.argv[1:] = quote_non_ascii(sys.argv[1:])  # queries.star.fr=étoile: Hydra reads ASCII
    main()
