"""DeepDream: `python -m miro.dream dreamer=encoder ckpt=CKPT input=IMAGE layer=inception4c`."""

import sys

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from miro.cli import exit_on, quote_non_ascii
from miro.deepdream.run import DreamJob, Stylization, run_dream
from miro.devices import resolve_device
from miro.images import UnreadableImageError
from miro.models.weights import WeightsNotFoundError
from miro.style.errors import StylizeError


def job_from_config(cfg: DictConfig) -> DreamJob:
    plain = OmegaConf.to_container(cfg, resolve=True)
    stylize = plain["stylize"]
    stylization = None
    if stylize["ckpt"] is not None:
        stylization = Stylization.load(
            stylize["ckpt"],
            stylize["style"],
            stylize["mix"],
            stylize["strength"],
            stylize["preserve_color"],
        )
    return DreamJob(
        output=cfg.output,
        input=cfg.input,
        size=cfg.size,
        max_size=cfg.max_size,
        objective=cfg.objective,
        layer=cfg.layer,
        unit=cfg.unit,
        words=cfg.words,
        guide=cfg.guide,
        layers=plain["layers"],
        settings=instantiate(cfg.settings),
        seed=cfg.seed,
        save_octaves=cfg.save_octaves,
        zoom=plain["zoom"],
        video=plain["video"],
        temporal=instantiate(cfg.temporal),
        stylization=stylization,
        order=cfg.order,
        progress=cfg.progress,
    )


def run(cfg: DictConfig) -> str:
    """Dream as ``cfg`` says; returns a report of what was written."""
    if cfg.dreamer.get("ckpt_path", "") is None:
        raise ValueError(
            "dreamer=encoder needs its checkpoint: ckpt=PATH (train one with `python -m "
            "miro.train +experiment=instagram_text`), or dream with dreamer=googlenet|vgg16"
        )
    job = job_from_config(cfg)
    model = instantiate(cfg.dreamer).to(resolve_device(cfg.device))
    written = run_dream(model, job, OmegaConf.to_container(cfg, resolve=True))
    return f"outputs: {cfg.output}\n" + "\n".join(f"  {path.name}" for path in written)


@hydra.main(version_base="1.3", config_path="../conf", config_name="dream")
def main(cfg: DictConfig) -> None:
    with exit_on(ValueError, WeightsNotFoundError, UnreadableImageError, StylizeError):
        print(run(cfg))


if __name__ == "__main__":
    sys.argv[1:] = quote_non_ascii(sys.argv[1:])  # words=étoile: Hydra reads ASCII unquoted
    main()
