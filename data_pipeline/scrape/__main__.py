"""Entry point: ``python -m data_pipeline.scrape hashtags=[joanmiro,miro] out=DIR login.user=U``."""

import sys

import hydra
from omegaconf import DictConfig

from data_pipeline.scrape.command import run


@hydra.main(version_base="1.3", config_path="../../conf", config_name="scrape")
def main(cfg: DictConfig) -> None:
    """Compose the config, scrape, exit with the code :func:`run` returns."""
    sys.exit(run(cfg))


if __name__ == "__main__":
    main()
