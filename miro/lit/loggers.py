"""Experiment loggers built from config."""

import netrc
import os
from collections.abc import Sequence
from urllib.parse import urlparse

from pytorch_lightning.loggers import Logger, WandbLogger


def wandb_logged_in() -> bool:
    """Whether W&B has credentials: ``WANDB_API_KEY`` or a ``~/.netrc`` entry for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_logger(
    offline: bool | None = None, log_model: bool | str = False, **kwargs
) -> WandbLogger:
    """A ``WandbLogger`` that runs offline when no account is configured (``offline=None``);
    sync such a run later with ``wandb sync <save_dir>/wandb/offline-run-*``.

    ``log_model`` (checkpoints as W&B artifacts: ``True`` at the end, ``"all"`` as written)
    applies to online runs only; offline, Lightning refuses it and the checkpoints stay in the
    run dir (``<output_dir>/checkpoints``) alone."""
    if offline is None:
        offline = not wandb_logged_in()
    return WandbLogger(offline=offline, log_model=False if offline else log_model, **kwargs)


def finish_loggers(loggers: Sequence[Logger]) -> None:
    """Close W&B runs now, so a sweep's next job starts a run of its own."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
