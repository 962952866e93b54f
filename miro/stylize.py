"""Stylize images or a video: `python -m miro.stylize ckpt=CKPT input=FILE_OR_DIR output=DIR
style=3`."""

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from miro.cli import exit_on
from miro.devices import DeviceError
from miro.models.checkpoints import CheckpointError
from miro.style.errors import InputError, StylizeError
from miro.style.export import export_stylizer
from miro.style.run import stylize_path
from miro.style.tiling import Tiling
from miro.video.errors import UnreadableVideoError, VideoSettingsError


def run(cfg: DictConfig) -> str:
    """Stylize ``cfg.input`` (or export the model with ``cfg.export``); returns the report."""
    mix = OmegaConf.to_container(cfg.mix) if isinstance(cfg.mix, DictConfig) else cfg.mix
    if cfg.ckpt is None:
        raise InputError(
            "give the stylizer checkpoint: ckpt=PATH (train one with "
            "`python -m miro.train +experiment=miro_style`)"
        )
    if cfg.export:
        path = export_stylizer(
            cfg.ckpt, cfg.output, cfg.export, cfg.style, mix, cfg.strength, cfg.preserve_color
        )
        return f"outputs: {cfg.output}\nexported {path}, described in {path.with_suffix('.json')}"
    if cfg.input is None:
        raise InputError("give the images or video to stylize: input=FILE_OR_DIR")
    report = stylize_path(
        cfg.ckpt,
        cfg.input,
        cfg.output,
        style=cfg.style,
        mix=mix,
        strength=cfg.strength,
        preserve_color=cfg.preserve_color,
        max_size=cfg.max_size,
        batch_size=cfg.batch_size,
        device=cfg.device,
        tiling=Tiling(cfg.tile, cfg.tile_size, cfg.tile_overlap, cfg.tile_above_pixels),
        extension=cfg.extension,
        progress=cfg.progress,
        runtime=cfg.runtime,
        onnx_cache=cfg.onnx_cache,
        temporal=instantiate(cfg.temporal),
    )
    return report.summary()


@hydra.main(version_base="1.3", config_path="../conf", config_name="stylize")
def main(cfg: DictConfig) -> None:
    with exit_on(
        StylizeError, CheckpointError, DeviceError, UnreadableVideoError, VideoSettingsError
    ):
        print(run(cfg))


if __name__ == "__main__":
    main()
