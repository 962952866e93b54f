"""The VGG-16 loss network in bfloat16 (``module.loss_precision=bfloat16``, an opt-in) trains
the stylizer to nearly the float32 objective: the same gradients at the start, a float32 loss
reached within 10 %. (It is not the default: on two recolourings of one painting, bfloat16
features no longer tell the styles apart, which ``test_style_training`` needs in float32.)"""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_config
from hydra.utils import instantiate

from data_pipeline.synthetic import GeneratorSettings, generate_posts
from miro.devices import native_bfloat16
from miro.images import find_images, load_image


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("precision_world")
    small = GeneratorSettings(min_size=64, max_size=96, max_motifs=2)
    generate_posts(root / "content", num_posts=16, seed=0, settings=small)
    generate_posts(root / "styles", num_posts=2, seed=1, settings=small)
    return root


def module_and_data(world: Path, run_dir: Path, precision: str, steps: int = 0, seed: int = 0):
    cfg = compose_config(
        "train",
        [
            "+experiment=miro_style",
            "style_set=synthetic",
            f"style_set.dir={world / 'styles'}",
            f"data.image_dir={world / 'content'}",
            "data.image_size=48",
            "data.num_workers=0",
            "model.loss_net.weights=null",
            "module.style_image_size=64",
            "module.optimizer.lr=1e-2",
            f"module.loss_precision={precision}",
            f"trainer.max_steps={steps}",
            "logger=none",
            f"seed={seed}",
        ],
        run_dir,
    )
    pl.seed_everything(seed, workers=True)
    return cfg, instantiate(cfg.module), instantiate(cfg.data)


def objective(module, images: torch.Tensor) -> float:
    """The weighted float32 objective of ``module``'s stylizer on ``images``, over its styles."""
    module.loss_precision = "float32"
    total = 0.0
    with torch.no_grad():
        for style in range(module.num_trained):
            _, parts = module.losses(images, torch.full((len(images),), style))
            total += module.content_weight * parts["content"].item()
            total += module.style_weight * parts["style"].mean().item()
    return total / module.num_trained


def content_batch(world: Path) -> torch.Tensor:
    images = [
        load_image(path, short_side=48)[:, :48, :48] for path in find_images(world / "content")
    ]
    return torch.stack(images[:8])


def test_bfloat16_loss_network_gives_the_float32_gradients(world, tmp_path):
    images, styles = content_batch(world), torch.tensor([0, 1] * 4)
    gradients = {}
    for precision in ("float32", "bfloat16"):
        _, module, _ = module_and_data(world, tmp_path / precision, precision)
        _, parts = module.losses(images, styles)
        (parts["content"] + module.style_weight * parts["style"].mean()).backward()
        gradients[precision] = torch.cat([p.grad.flatten() for p in module.stylizer.parameters()])
    exact, fast = gradients["float32"], gradients["bfloat16"]
    cosine = torch.nn.functional.cosine_similarity(exact, fast, dim=0)
    assert cosine > 0.995, cosine
    assert (fast.norm() / exact.norm() - 1).abs() < 0.02


@pytest.mark.skipif(
    not native_bfloat16(torch.device("cpu")),
    reason="this CPU emulates bfloat16 at a tenth of its float32 speed (nearly 6 minutes for this "
    "test): the option is for CPUs with AVX512-BF16 or AMX, where the test runs",
)
def test_bfloat16_loss_network_trains_to_the_float32_objective(world, tmp_path):
    """Trained 40 steps from the same seed, the bfloat16 run reaches the float32 run's float32
    objective within 10 %, and far closer than a float32 run from another seed (another start,
    crops and styles) does: measured 5 % apart, against 45 % between the seeds."""
    images = content_batch(world)
    reached = {}
    for precision, seed in (("float32", 0), ("float32", 1), ("bfloat16", 0)):
        run = tmp_path / f"{precision}_{seed}"
        cfg, module, data = module_and_data(world, run, precision, steps=40, seed=seed)
        start = objective(module, images)
        module.loss_precision = precision
        trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        trainer.fit(module, datamodule=data)
        reached[precision, seed] = objective(module, images)
    exact = reached["float32", 0]
    assert exact < 0.8 * start  # training did lower it
    seeds_apart = abs(reached["float32", 1] - exact)
    gap = abs(reached["bfloat16", 0] - exact)
    assert gap < 0.1 * exact and gap < 0.25 * seeds_apart, reached
