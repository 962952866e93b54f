"""Shared fixtures: the real Hydra configs, composed as a user's command line would."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def compose_config(name: str, overrides: list[str], run_dir: Path) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with ``overrides``, writing under ``run_dir``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir = str(run_dir)
        cfg.paths.output_dir = str(run_dir / "run")
        del cfg.hydra
    return cfg


@pytest.fixture
def compose_train(tmp_path):
    def compose_train(*overrides: str) -> DictConfig:
        return compose_config("train", ["+experiment=instagram_text", *overrides], tmp_path)

    return compose_train


# A synthetic world where captions carry a learnable signal at test scale: one motif per
# image, English captions, few captions unrelated to their image (see experiments/instagram_text).
LEARNABLE_WORLD = {
    "max_motifs": 1,
    "languages": {"en": 1.0},
    "unrelated_fraction": 0.1,
}


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    """600 synthetic posts, built into a dataset dir; ``raw/ground_truth.jsonl`` beside it."""
    from data_pipeline.dataset import build_dataset
    from data_pipeline.synthetic import GeneratorSettings, generate_posts

    root = tmp_path_factory.mktemp("synthetic")
    generate_posts(
        root / "raw", num_posts=600, seed=0, settings=GeneratorSettings(**LEARNABLE_WORLD)
    )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        tokenizer = instantiate(compose("build", overrides=["raw=x", "out=y"]).tokenizer)
    build_dataset(root / "raw", root / "dataset", tokenizer, progress=False)
    return root / "dataset"
