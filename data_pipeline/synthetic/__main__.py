"""Entry point: ``python -m data_pipeline.synthetic out=DIR num_posts=N seed=S``."""

from __future__ import annotations

import hydra
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from data_pipeline.synthetic.generate import GeneratorSettings, generate_posts


@hydra.main(version_base="1.3", config_path="../../conf", config_name="synthetic")
def main(cfg: DictConfig) -> None:
    """Map the config onto :func:`generate_posts` and report where the posts are."""
    if OmegaConf.is_missing(cfg, "out"):
        raise SystemExit(
            "synthetic: out=DIR is required (the directory to write the posts into), e.g. "
            "python -m data_pipeline.synthetic out=data/synthetic/raw num_posts=500 seed=0"
        )
    knobs = OmegaConf.to_container(cfg.generator, resolve=True)
    summary = generate_posts(
        to_absolute_path(cfg.out),
        num_posts=cfg.num_posts,
        seed=cfg.seed,
        settings=GeneratorSettings(**knobs),
        progress=True,
    )
    print(summary.report())


if __name__ == "__main__":
    main()
