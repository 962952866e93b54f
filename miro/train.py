"""Train a model: `python -m miro.train +experiment=instagram_text data.dataset_dir=DIR`."""

import json
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from miro.lit.data import DatasetNotFoundError
from miro.lit.loggers import finish_loggers


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit ``cfg.module`` on ``cfg.data`` with ``cfg.trainer``; returns the final metrics, also
    written to ``<output dir>/metrics.json`` (read by the demo's gallery and by sweeps)."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.module)
    loggers = [instantiate(logger) for logger in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(callback) for callback in (cfg.get("callbacks") or {}).values()]
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    if cfg.test:
        best = trainer.checkpoint_callback.best_model_path or None
        for results in trainer.test(module, datamodule=datamodule, ckpt_path=best):
            metrics.update(results)
    finish_loggers(loggers)
    if trainer.is_global_zero:
        output = Path(cfg.paths.output_dir) / "metrics.json"
        output.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def report(cfg: DictConfig, metrics: dict[str, float]) -> None:
    lines = [f"outputs: {cfg.paths.output_dir}"]
    for split in ("val", "test"):
        if f"{split}/map" in metrics:
            score, chance = metrics[f"{split}/map"], metrics[f"{split}/map_chance"]
            lines.append(
                f"{split} text-to-image mAP {score:.3f} vs chance {chance:.3f} "
                f"({score / chance:.1f}x)"
            )
    print("\n".join(lines))


def missing_dataset(err: BaseException | None) -> DatasetNotFoundError | None:
    """The missing-dataset error behind ``err`` (instantiate wraps it), if that is the cause."""
    while err is not None and not isinstance(err, DatasetNotFoundError):
        err = err.__cause__
    return err


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except Exception as err:
        if cause := missing_dataset(err):
            raise SystemExit(f"error: {cause}") from None
        raise
    report(cfg, metrics)
    return metrics.get("val/map")


if __name__ == "__main__":
    main()
