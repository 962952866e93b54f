"""The studio: `python -m miro.studio` serves a local web app on the demo's models
(`encoder=`, `stylizer=`, `dataset_dir=` for others; `host=`, `port=`)."""

import sys

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from miro.cli import exit_on, quote_non_ascii
from miro.devices import DeviceError
from miro.webapp.app import build_studio, serve
from miro.webapp.models import StudioModels, StudioPaths


@hydra.main(version_base="1.3", config_path="../conf", config_name="studio")
def main(cfg: DictConfig) -> None:
    with exit_on(DeviceError):
        paths = StudioPaths(
            cfg.encoder, cfg.stylizer, cfg.dataset_dir, cfg.text_model_dir, cfg.split, cfg.device
        )
        models = StudioModels.open(paths)
        blocks = build_studio(models, instantiate(cfg.settings), cfg.results_dir)
        serve(blocks, models, cfg.results_dir, cfg.host, cfg.port)


if __name__ == "__main__":
    sys.argv[1:] = quote_non_ascii(sys.argv[1:])  # dataset_dir=données: Hydra reads ASCII unquoted
    main()
