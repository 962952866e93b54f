"""Shared fixtures: the real Hydra configs, composed as a user's command line would."""

import functools
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from miro.lit.text_supervised import TextSupervisedEncoder
from miro.losses import SigmoidCrossEntropy
from miro.models.googlenet import GoogLeNetEncoder
from miro.text.lda import TopicEmbedder
from miro.text.targets import fit_text_targets
from miro.text.tokenize import CaptionTokenizer

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def command_env() -> dict[str, str]:
    """The environment of a command under test: no W&B account in reach (runs log offline),
    one OpenMP thread a process (two a process on a busy 2-core box spin against each other)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return env | {"OMP_NUM_THREADS": "1"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: under xdist (with ``--no-loadscope-reorder``) no long training
    starts last and runs alone while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_itemcollected(item: pytest.Item) -> None:
    """A group for pytest-xdist's ``--dist loadgroup`` (``make test``): a file's tests share one
    worker (its module fixtures are built once), every test of the session's trained encoder
    shares one (it is trained once), and each other slow test runs beside the rest."""
    if "trained_encoder" in item.fixturenames:
        group = "trained_encoder"
    elif item.get_closest_marker("slow"):
        group = item.nodeid
    else:
        group = item.path.name
    item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures(...)``) or a test:
    tiny models run as fast on one, and on a busy 2-core box two OpenMP threads that spin-wait
    for each other make GoogLeNet steps 10-60x slower. ``make test`` runs every worker so."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_module(
    module: str, *arguments: str, cwd: Path = ROOT, timeout: int = 600
) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGUMENTS`` as a user types it, in ``command_env``."""
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=cwd,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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


def build_synthetic(root: Path, num_posts: int, generator: str) -> Path:
    """``num_posts`` synthetic posts of ``conf/generator/<generator>.yaml`` (seed 0) in
    ``root/raw``, built into ``root/dataset`` (returned)."""
    from data_pipeline.build import build_dataset
    from data_pipeline.synthetic import GeneratorSettings, generate_posts

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        settings = compose("synthetic", overrides=[f"generator={generator}"]).generator
        tokenizer = instantiate(compose("build").tokenizer)
    settings = GeneratorSettings(**OmegaConf.to_container(settings))
    generate_posts(root / "raw", num_posts=num_posts, seed=0, settings=settings)
    build_dataset(root / "raw", root / "dataset", tokenizer, progress=False)
    return root / "dataset"


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    """600 posts of the learnable synthetic world (``generator=learnable``), built into a
    dataset dir; ``raw/ground_truth.jsonl`` lies beside it."""
    return build_synthetic(tmp_path_factory.mktemp("synthetic"), 600, "learnable")


# TextTopicNet on the learnable world, sized for the suite: 48 px, 12 LDA topics, 24 epochs
# (about 3 minutes on one Zen 3 core). Measured there: the motifs' mAP 2.9x chance, P@5 3.8x,
# retrieval's precision 3.6x and the probe 0.68 against 0.41 from random weights; 64 px and 32
# epochs took twice as long for no larger margin.
LEARNABLE_ENCODER = (
    "text=lda",
    "loss=sigmoid_ce",
    "text.num_topics=12",
    "data.image_size=48",
    "trainer.max_epochs=24",
)


def encoder_config(
    dataset: Path, run_dir: Path, overrides: Sequence[str] = LEARNABLE_ENCODER
) -> DictConfig:
    """``+experiment=instagram_text`` on ``dataset`` with ``overrides``, quiet and untested."""
    return compose_config(
        "train",
        [
            "+experiment=instagram_text",
            f"data.dataset_dir={dataset}",
            "data.num_workers=0",
            "+trainer.enable_progress_bar=false",
            "logger=none",
            "test=false",
            *overrides,
        ],
        run_dir,
    )


def fit_encoder(
    dataset: Path,
    run_dir: Path,
    shuffle_targets: bool = False,
    overrides: Sequence[str] = LEARNABLE_ENCODER,
) -> Path:
    """Train ``encoder_config`` on ``dataset``; ``shuffle_targets`` pairs the training images
    with other posts' captions (the control). Returns ``last.ckpt`` in ``run_dir``'s CLI
    layout."""
    cfg = encoder_config(dataset, run_dir, overrides)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    if shuffle_targets:
        train_targets = datamodule.datasets["train"].targets
        order = torch.randperm(len(train_targets), generator=torch.Generator().manual_seed(0))
        datamodule.datasets["train"].targets = train_targets[order]
    pl.seed_everything(cfg.seed)
    callbacks = [instantiate(cfg.callbacks[name]) for name in ("model_checkpoint", "channels_last")]
    trainer = instantiate(cfg.trainer, logger=False, callbacks=callbacks)
    trainer.fit(instantiate(cfg.module), datamodule=datamodule)
    run = Path(cfg.paths.output_dir)
    (run / ".hydra").mkdir(exist_ok=True)  # as the CLI leaves it: retrieval reads image_size
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def trained_encoder(synthetic_dataset, tmp_path_factory) -> Path:
    """``last.ckpt`` of an encoder that learned the synthetic world (``fit_encoder``), trained
    once per session for every test that scores retrieval against the ground truth."""
    return fit_encoder(synthetic_dataset, tmp_path_factory.mktemp("trained_encoder"))


TINY_CAPTIONS = [
    "red star over the blue moon",
    "a bird and a red star",
    "blue moon, black ladder",
    "the sun and the bird",
    "ladder to the red sun",
    "star star moon bird",
    "black bird, blue sun",
    "moon ladder star",
]


class _TinyPosts(pl.LightningDataModule):
    """Eight 32 px posts with LDA targets, fitted and copied as ``InstagramDataModule`` does."""

    def __init__(self, root) -> None:
        super().__init__()
        self.text = TopicEmbedder(
            CaptionTokenizer(), num_topics=4, no_below=1, no_above=1.0, iterations=100
        )
        ids = [str(i) for i in range(len(TINY_CAPTIONS))]
        self.targets = fit_text_targets(
            self.text, ids, ["train"] * len(ids), TINY_CAPTIONS, root / "cache"
        )

    def train_dataloader(self) -> DataLoader:
        images = torch.rand(
            len(TINY_CAPTIONS), 3, 32, 32, generator=torch.Generator().manual_seed(0)
        )
        targets = torch.from_numpy(self.targets.vectors)
        return DataLoader(TensorDataset(images, targets, torch.arange(len(images))), batch_size=4)


def keep_scale(encoder: GoogLeNetEncoder) -> GoogLeNetEncoder:
    """He-initialized convolutions, so random activations neither vanish nor explode."""
    for module in encoder.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return encoder


@pytest.fixture(scope="session")
def encoder_checkpoint(tmp_path_factory):
    """``<run>/checkpoints/last.ckpt`` after one training step, ``<run>/text_model`` beside."""
    root = tmp_path_factory.mktemp("encoder")
    run = root / "run"
    posts = _TinyPosts(root)
    shutil.copytree(posts.targets.directory, run / "text_model")
    torch.manual_seed(0)
    module = tiny_encoder(lr=1e-3)
    trainer = fit_tiny(module, posts, run, steps=1)
    trainer.save_checkpoint(run / "checkpoints" / "last.ckpt")
    return run / "checkpoints" / "last.ckpt", module


def tiny_encoder(lr: float) -> TextSupervisedEncoder:
    """A 4-d GoogLeNet text encoder (sigmoid cross-entropy, SGD at ``lr``)."""
    return TextSupervisedEncoder(
        keep_scale(GoogLeNetEncoder(embed_dim=4)),
        SigmoidCrossEntropy(),
        optimizer=functools.partial(torch.optim.SGD, lr=lr),
    )


def fit_tiny(module, datamodule, run_dir: Path, steps: int, callbacks=()) -> pl.Trainer:
    """``steps`` CPU training steps of ``module`` by a real Trainer, with no logger,
    checkpoints, progress bar or validation; returns the trainer."""
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        callbacks=list(callbacks),
        default_root_dir=run_dir,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    with warnings.catch_warnings():  # no validation loop here, on purpose
        warnings.simplefilter("ignore", UserWarning)
        trainer.fit(module, datamodule=datamodule)
    return trainer


def wandb_run_records(run: Path) -> list[dict]:
    """The records of a W&B run as W&B's own reader gives them (``wandb leet inspect --json``):
    one dict a record, with ``type`` ``run``, ``config``, ``history``, ``summary``, ``exit``...

    ``run`` is a ``.wandb`` file or a run dir such as ``<save_dir>/wandb/offline-run-*``; media
    and tables a history record names lie under ``<run dir>/files/``."""
    wandb_cli = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run)]
    result = subprocess.run(wandb_cli, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wandb could not read {run}: {result.stderr.strip()}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
