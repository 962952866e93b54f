"""Entry point: ``python -m data_pipeline.synthetic out=DIR num_posts=N seed=S``, or a labelled
folder of single motifs for the linear probe: ``... out=DIR layout=labelled per_class=60``."""

from __future__ import annotations

import hydra
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from data_pipeline.synthetic.generate import GeneratorSettings, generate_posts
from data_pipeline.synthetic.labelled import write_labelled_folder
from miro.cli import exit_on


@hydra.main(version_base="1.3", config_path="../../conf", config_name="synthetic")
def main(cfg: DictConfig) -> None:
    """Map the config onto :func:`generate_posts` and report where the posts are."""
    with exit_on(ValueError, FileExistsError):
        print(generate(cfg))


def generate(cfg: DictConfig) -> str:
    """Write the posts (or the labelled folder) ``cfg`` asks for; the report."""
    if OmegaConf.is_missing(cfg, "out"):
        raise ValueError(
            "out=DIR is required (the directory to write the posts into), e.g. "
            "python -m data_pipeline.synthetic out=data/synthetic/raw num_posts=500 seed=0"
        )
    if cfg.layout == "labelled":
        out = write_labelled_folder(to_absolute_path(cfg.out), cfg.per_class, cfg.size, cfg.seed)
        return f"labelled folder written to {out}: {cfg.per_class} images of each motif"
    if cfg.layout != "posts":
        raise ValueError(f"layout={cfg.layout!r}; choose posts or labelled")
    knobs = OmegaConf.to_container(cfg.generator, resolve=True)
    summary = generate_posts(
        to_absolute_path(cfg.out),
        num_posts=cfg.num_posts,
        seed=cfg.seed,
        settings=GeneratorSettings(**knobs),
        progress=True,
    )
    return summary.report()


if __name__ == "__main__":
    main()
