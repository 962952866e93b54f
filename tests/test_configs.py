"""Every config composes, resolves and builds what it can offline.

Composed with Hydra's compose API as a command composes it (``return_hydra_config``, Hydra's
run-time fields set as at a job's start, every mandatory ``???`` given a dummy path), then
resolved, Hydra's own node included (run and sweep dirs, launcher, sweeper, callbacks): an
interpolation to a key that does not exist fails here, not at the start of a long run.

Every ``_target_`` must import and take the keys the config gives it (a misspelled key of a
GPU trainer or a SLURM run is caught on a laptop), and every target that builds offline in
milliseconds is built: losses run on a batch, optimizer and scheduler partials are applied,
callbacks and loggers are made. ``NOT_BUILT`` names the targets that need data, weights, a
network or a device, and why.

The configs come from the filesystem: the root configs (``conf/*.yaml``), the experiments
(``conf/experiment/*.yaml`` through ``+experiment=`` with ``conf/train.yaml``), the searches
(``conf/hparams_search/*.yaml``) and every option of every group a root config picks
(``conf/<group>/*.yaml``), so a new file is covered when it is added.
"""

import inspect
import itertools
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from torch import nn

from data_pipeline.build.__main__ import read_settings
from data_pipeline.build.settings import BuildSettings
from data_pipeline.scrape.command import parse_carousel, parse_hashtags
from data_pipeline.synthetic import GeneratorSettings
from miro.report.gallery import Section
from miro.style.tiling import Tiling
from miro.text.tokenize import CaptionTokenizer

ROOT_CONFIGS = sorted(path.stem for path in CONF.glob("*.yaml"))
EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))
SEARCHES = sorted(path.stem for path in (CONF / "hparams_search").glob("*.yaml"))
HYDRA_KEYS = {"_target_", "_partial_", "_convert_", "_recursive_", "_args_"}

# Targets these tests check (import, keys) but do not build; a node that holds one is not built
# either, its other parts are (``module.loss``, ``data.text``).
NOT_BUILT = {
    "miro.lit.data.InstagramDataModule": "reads the dataset's manifest",
    "miro.lit.content_data.ContentImagesDataModule": "lists the content images",
    "miro.models.googlenet.GoogLeNetEncoder": "a 6M-parameter network; ImageNet's from TORCH_HOME",
    "miro.models.vgg.VGG16Features": "ImageNet weights from TORCH_HOME",
    "miro.deepdream.text_encoder": "reads an encoder checkpoint",
    "miro.deepdream.googlenet": "ImageNet weights from TORCH_HOME",
    "miro.deepdream.vgg16": "ImageNet weights from TORCH_HOME",
    "pytorch_lightning.Trainer": "claims devices (gpu, ddp) and sets process-wide determinism",
    "miro.lit.loggers.wandb_logger": "starts a W&B run",
}


@pytest.fixture(scope="module")
def hydra_conf():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


def compose_resolved(
    name: str, overrides: list[str], run_dir: Path
) -> tuple[DictConfig, DictConfig]:
    """``conf/<name>.yaml`` with ``overrides``, every mandatory job key given a path under
    ``run_dir``, resolved; the job's config and Hydra's, apart (as a command sees them)."""
    cfg = compose(name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):  # what Hydra sets as a job starts
        cfg.hydra.runtime.output_dir = str(run_dir / "run")
        cfg.hydra.job.num = 0
        cfg.hydra.job.id = "0"
    HydraConfig().set_config(cfg)  # ${hydra:...} resolves against it
    missing = [key for key in mandatory_keys(cfg) if not key.startswith("hydra.")]
    if missing:
        dummies = [f"{key}={run_dir / key.replace('.', '_')}" for key in sorted(missing)]
        return compose_resolved(name, [*overrides, *dummies], run_dir)
    OmegaConf.set_readonly(cfg.hydra, False)
    OmegaConf.resolve(cfg)
    hydra_cfg = cfg.hydra
    with open_dict(cfg):
        del cfg.hydra
    assert not mandatory_keys(cfg)
    return cfg, hydra_cfg


def mandatory_keys(cfg: DictConfig) -> list[str]:
    """The dotted keys whose value is ``???``, read without resolving interpolations."""
    keys = []

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif value == "???":
            keys.append(path)

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return keys


def target_nodes(node, path: str = ""):
    """``(path, node)`` of every node with a ``_target_`` under ``node``, outer first."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        for key in node:
            if not OmegaConf.is_missing(node, key):  # Hydra's own hydra_help.hydra_help
                yield from target_nodes(node[key], f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for index, item in enumerate(node):
            yield from target_nodes(item, f"{path}[{index}]")


def check_targets(cfg: DictConfig) -> None:
    """Every ``_target_`` imports and takes its keys (all its required ones unless partial)."""
    for path, node in target_nodes(cfg):
        target = get_object(node._target_)
        keys = {key: node[key] for key in node if key not in HYDRA_KEYS}
        signature = inspect.signature(target)
        bind = signature.bind_partial if node.get("_partial_", False) else signature.bind
        try:
            bind(*node.get("_args_", []), **keys)
        except TypeError as error:
            pytest.fail(f"{path}: {node._target_} does not take {sorted(keys)}: {error}")


def build_offline(cfg: DictConfig) -> dict[str, object]:
    """Instantiate every target node that holds nothing of ``NOT_BUILT``; path → object."""
    built = {}
    for path, node in target_nodes(cfg):
        inside = {inner._target_ for _, inner in target_nodes(node)}
        within_built = any(path.startswith((f"{done}.", f"{done}[")) for done in built)
        if not inside & NOT_BUILT.keys() and not within_built:
            built[path] = instantiate(node)
    return built


def check_training_parts(cfg: DictConfig, built: dict[str, object]) -> None:
    """What ``miro.train`` builds from a config, as far as it builds offline, does its job."""
    if cfg.get("loss") is not None:
        loss, dim = built["loss"], cfg.text.num_topics
        generator = torch.Generator().manual_seed(0)
        vectors = torch.rand(8, dim, generator=generator)  # text vectors: topics, counts
        outputs = torch.randn(8, dim, generator=generator, requires_grad=True)
        value = loss(outputs, loss.prepare_targets(vectors))
        assert value.shape == () and torch.isfinite(value), cfg.loss._target_
        value.backward()
        assert outputs.grad.abs().sum() > 0
    if cfg.get("text") is not None:  # sized as the encoder's head; its params key caches
        text = built["text"]
        assert text.dim == cfg.text.num_topics == cfg.model.get("embed_dim", text.dim)
        assert isinstance(text.tokenizer, CaptionTokenizer) and json.dumps(text.params())
    layer = nn.Linear(3, 2)
    for path in ("optim.optimizer", "module.optimizer"):
        if path in built:
            optimizer = built[path](layer.parameters())
            assert isinstance(optimizer, torch.optim.Optimizer), path
            if path == "optim.optimizer" and cfg.optim.get("scheduler") is not None:
                scheduler = built["optim.scheduler"](optimizer)
                assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    for name in cfg.get("callbacks") or {}:
        assert isinstance(built[f"callbacks.{name}"], pl.Callback), name
    for name, logger in (cfg.get("logger") or {}).items():
        if logger._target_ not in NOT_BUILT:
            assert isinstance(built[f"logger.{name}"], pl.loggers.Logger), name
    if cfg.get("model", {}).get("stylizer") is not None:  # a partial: the module counts styles
        stylizer = built["model.stylizer"](num_styles=2)
        assert stylizer(torch.rand(1, 3, 8, 8), torch.tensor([1])).shape == (1, 3, 8, 8)
    # loggers record the resolved config (W&B as JSON)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert json.loads(json.dumps(container)) == container


def check_as_the_command_reads_it(name: str, cfg: DictConfig, built: dict) -> None:
    """The parts of a root config without a ``_target_``, read as its command reads them."""
    if name == "build":
        assert isinstance(read_settings(cfg), BuildSettings)
    elif name == "synthetic":
        GeneratorSettings(**OmegaConf.to_container(cfg.generator))
    elif name == "gallery":
        assert all(Section(**instantiate(section)).patterns for section in cfg.sections)
    elif name == "stylize":
        Tiling(cfg.tile, cfg.tile_size, cfg.tile_overlap, cfg.tile_above_pixels)
    elif name == "scrape":
        assert parse_hashtags(cfg.hashtags) and parse_carousel(cfg.carousel) is None
    elif name == "train":
        check_training_parts(cfg, built)


def check_config(name: str, cfg: DictConfig, hydra_cfg: DictConfig) -> dict[str, object]:
    check_targets(cfg)
    check_targets(hydra_cfg)
    return build_offline(cfg)


@pytest.mark.parametrize("name", ROOT_CONFIGS)
def test_a_root_config_composes_resolves_and_builds(hydra_conf, name, tmp_path):
    cfg, hydra_cfg = compose_resolved(name, [], tmp_path)
    check_as_the_command_reads_it(name, cfg, check_config(name, cfg, hydra_cfg))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_an_experiment_composes_resolves_and_builds(hydra_conf, experiment, tmp_path):
    cfg, hydra_cfg = compose_resolved("train", [f"+experiment={experiment}"], tmp_path)
    assert hydra_cfg.runtime.choices.experiment == experiment
    check_training_parts(cfg, check_config("train", cfg, hydra_cfg))


@pytest.mark.parametrize("search", SEARCHES)
def test_a_search_composes_and_resolves(hydra_conf, search, tmp_path):
    overrides = ["+experiment=instagram_text", f"+hparams_search={search}"]
    cfg, hydra_cfg = compose_resolved("train", overrides, tmp_path)
    check_config("train", cfg, hydra_cfg)
    assert hydra_cfg.sweeper.params  # what it searches
    for key in hydra_cfg.sweeper.params:  # each a key of the config, or a group
        assert OmegaConf.select(cfg, key) is not None or (CONF / key).is_dir(), key


def group_options(name: str) -> list[list[str]]:
    """``GROUP=OPTION`` for every other option of every group ``conf/<name>.yaml`` picks that
    lives in ``conf/`` (Hydra's own groups under ``conf/hydra/`` for ``train`` only: its
    launcher is sized from the trainer), except the pairs an experiment picks, which
    ``test_an_experiment_composes_resolves_and_builds`` composes in their context. In rounds
    of one option per group (a composition takes 0.2 s): the n-th option of each group."""
    chosen_in_experiments = set()
    if name == "train":
        for experiment in EXPERIMENTS:
            composed = compose(name, [f"+experiment={experiment}"], return_hydra_config=True)
            chosen_in_experiments |= set(composed.hydra.runtime.choices.items())
    by_group = []
    for group, chosen in compose(name, return_hydra_config=True).hydra.runtime.choices.items():
        folder = CONF / group.split("@")[0]
        if chosen is None or not folder.is_dir():
            continue
        if group.startswith("hydra/") and name != "train":
            continue
        options = sorted(path.stem for path in folder.glob("*.yaml"))
        others = [o for o in options if o != chosen and (group, o) not in chosen_in_experiments]
        by_group.append([f"{group}={option}" for option in others])
    rounds = itertools.zip_longest(*by_group)
    return [[override for override in overrides if override] for overrides in rounds]


@pytest.mark.parametrize("name", ROOT_CONFIGS)
def test_every_option_of_every_group_composes_resolves_and_builds(hydra_conf, name, tmp_path):
    for overrides in group_options(name):
        try:
            cfg, hydra_cfg = compose_resolved(name, overrides, tmp_path)
            built = check_config(name, cfg, hydra_cfg)
            if name == "train":
                check_training_parts(cfg, built)
        except Exception as error:
            error.add_note(f"composing conf/{name}.yaml with {' '.join(overrides)}")
            raise
