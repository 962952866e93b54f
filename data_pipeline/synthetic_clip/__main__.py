"""Entry point: ``python -m data_pipeline.synthetic_clip out=clip.mp4 frames=48 size=128``."""

import hydra
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from data_pipeline.synthetic.clip import write_clip
from miro.cli import exit_on


@hydra.main(version_base="1.3", config_path="../../conf", config_name="synthetic_clip")
def main(cfg: DictConfig) -> None:
    with exit_on(ValueError):
        if OmegaConf.is_missing(cfg, "out"):
            raise ValueError("out=FILE.mp4 is required, e.g. out=data/clip.mp4")
        settings = OmegaConf.to_container(cfg, resolve=True)
        out = write_clip(to_absolute_path(settings.pop("out")), **settings)
        print(f"wrote {out}: {cfg.frames} frames of {cfg.size} px at {cfg.fps} fps")


if __name__ == "__main__":
    main()
