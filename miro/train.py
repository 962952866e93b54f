"""Train a model: `python -m miro.train +experiment=instagram_text data.dataset_dir=DIR`.

Resume an interrupted run in its own directory:
`python -m miro.train ... hydra.run.dir=RUN ckpt_path=last`.
"""

import json
import logging
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from data_pipeline.manifest import DatasetNotFoundError
from miro.cli import exit_on
from miro.lit.loggers import finish_loggers

log = logging.getLogger(__name__)


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """The checkpoint to resume from: ``last`` is ``<output_dir>/checkpoints/last.ckpt``, or
    None (train from scratch, with a warning) while that file does not exist yet, so one
    command serves a job's first start and each restart after it was stopped."""
    if ckpt_path != "last":
        return ckpt_path
    last = output_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        log.info("resuming from %s", last)
        return str(last)
    log.warning("ckpt_path=last: no checkpoint at %s yet, training from scratch", last)
    return None


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

    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, Path(cfg.paths.output_dir))
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    if cfg.test:
        # The monitoring checkpoint callback knows the best; last_checkpoint keeps no best.
        monitored = [c.best_model_path for c in trainer.checkpoint_callbacks if c.monitor]
        best = next(iter(monitored), "") or None
        for results in trainer.test(module, datamodule=datamodule, ckpt_path=best):
            metrics.update(results)
    finish_loggers(loggers)
    if trainer.is_global_zero:
        output = Path(cfg.paths.output_dir) / "metrics.json"
        output.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


@rank_zero_only
def report(cfg: DictConfig, metrics: dict[str, float]) -> None:
    """Where the outputs are and the retrieval scores against chance (printed once, by rank 0)."""
    lines = [f"outputs: {cfg.paths.output_dir}"]
    for split in ("val", "test"):
        if f"{split}/map" in metrics:
            score, chance = metrics[f"{split}/map"], metrics[f"{split}/map_chance"]
            lines.append(
                f"{split} text-to-image mAP {score:.3f} vs chance {chance:.3f} "
                f"({score / chance:.1f}x)"
            )
    print("\n".join(lines))


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with exit_on(DatasetNotFoundError):
        metrics = train(cfg)
    report(cfg, metrics)
    return metrics.get("val/map")


if __name__ == "__main__":
    main()
