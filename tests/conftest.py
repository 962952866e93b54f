"""Shared fixtures: the real Hydra configs, composed as a user's command line would."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

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


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    """600 posts of the learnable synthetic world (``generator=learnable``), built into a
    dataset dir; ``raw/ground_truth.jsonl`` lies beside it."""
    from data_pipeline.dataset import build_dataset
    from data_pipeline.synthetic import GeneratorSettings, generate_posts

    root = tmp_path_factory.mktemp("synthetic")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        generator = compose("synthetic", overrides=["generator=learnable"]).generator
        tokenizer = instantiate(compose("build").tokenizer)
    settings = GeneratorSettings(**OmegaConf.to_container(generator))
    generate_posts(root / "raw", num_posts=600, seed=0, settings=settings)
    build_dataset(root / "raw", root / "dataset", tokenizer, progress=False)
    return root / "dataset"
