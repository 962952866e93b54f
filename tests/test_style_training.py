"""N-style training end to end on tiny synthetic images: real configs, real Trainer, real CLI.

The VGG-16 loss network has random weights here (offline), so these tests check the mechanics
(every style's loss falls, styles differ, fine-tuning keeps old styles, the guard fires), not
how Miró-like the results look.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_config
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from PIL import Image, ImageEnhance

from miro.lit.content_data import ContentImagesDataModule, VariedRandomCrop
from miro.lit.style_callbacks import StyleTrainingDiverged
from miro.lit.style_transfer import StyleImagesNotFoundError, StyleTransferModule
from miro.losses import style_loss
from miro.models.stylizer import Stylizer
from miro.train import train

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_KEYS = {"num_styles", "width", "num_residual", "separable", "style_names"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """24 content photos and styles made from synthetic Miró compositions. ``styles/`` holds two
    recolourings of one composition: a random VGG-16 sees mostly brightness and colour energy,
    and to it these two differ from each other and from what the untrained stylizer paints (so
    each style's loss has room to fall). ``new_style/`` is another composition, to fine-tune."""
    from data_pipeline.synthetic import GeneratorSettings, generate_posts

    root = tmp_path_factory.mktemp("style_world")
    small = GeneratorSettings(min_size=64, max_size=96, max_motifs=2)
    generate_posts(root / "content", num_posts=24, seed=0, settings=small)
    large = GeneratorSettings(min_size=96, max_size=128, min_motifs=3, max_motifs=3)
    generate_posts(root / "compositions", num_posts=2, seed=1, settings=large)
    first, second = sorted((root / "compositions").glob("*.jpg"))
    (root / "styles").mkdir()
    painting = Image.open(first).convert("RGB")
    ImageEnhance.Brightness(painting).enhance(1.3).save(root / "styles" / "sunlit.png")
    red, green, blue = painting.split()
    gold = (red.point(lambda v: min(255, v + 10)), green, blue.point(lambda v: v // 4))
    Image.merge("RGB", gold).save(root / "styles" / "gold.png")
    (root / "new_style").mkdir()
    Image.open(second).save(root / "new_style" / "blue_ii.png")
    return root


def quick(world: Path, *overrides: str, experiment: str = "miro_style") -> list[str]:
    """``+experiment=EXPERIMENT`` on the synthetic world at 32 px with a random VGG-16."""
    return [
        f"+experiment={experiment}",
        "style_set=synthetic",
        f"style_set.dir={world / 'styles'}",
        f"data.image_dir={world / 'content'}",
        "data.image_size=32",
        "data.num_workers=0",
        "model.loss_net.weights=null",
        "module.style_image_size=64",
        *overrides,
    ]


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory) -> tuple[Path, StyleTransferModule, ContentImagesDataModule]:
    """A gold/sunlit stylizer trained 60 steps (12 epochs of 5 batches) as ``miro.train`` does."""
    cfg = compose_config(
        "train",
        quick(
            world,
            "module.optimizer.lr=1e-2",
            "logger=csv",
            "trainer.log_every_n_steps=1",
            "trainer.max_steps=60",
            "trainer.check_val_every_n_epoch=4",
        ),
        tmp_path_factory.mktemp("style_run"),
    )
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, module = instantiate(cfg.data), instantiate(cfg.module)
    trainer = instantiate(
        cfg.trainer,
        logger=[instantiate(cfg.logger.csv)],
        callbacks=[
            instantiate(cfg.callbacks[name])
            for name in ("model_checkpoint", "style_samples", "divergence_watchdog")
        ],
    )
    trainer.fit(module, datamodule=datamodule)
    return Path(cfg.paths.output_dir), module, datamodule


def load_stylizer(checkpoint: Path) -> tuple[Stylizer, dict]:
    """Rebuild the stylizer from a checkpoint as the stylize CLI does: the contract's keys."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config = {k: v for k, v in saved["stylizer"].items() if k != "style_names"}
    stylizer = Stylizer(**config)
    prefix = "stylizer."
    state = {k[len(prefix) :]: v for k, v in saved["state_dict"].items() if k.startswith(prefix)}
    stylizer.load_state_dict(state)
    return stylizer.eval(), saved


def content_image(world: Path, size: int = 64) -> torch.Tensor:
    from miro.images import load_image

    image = load_image(sorted((world / "content").glob("*.jpg"))[0], short_side=size)
    return image[:, :size, :size][None]


def per_style_history(run: Path) -> dict[str, list[tuple[int, float]]]:
    rows = list(csv.DictReader((run / "csv" / "version_0" / "metrics.csv").open()))
    history = {}
    for column in rows[0]:
        if column.startswith("train/style_loss/"):
            values = [(int(r["step"]), float(r[column])) for r in rows if r[column]]
            history[column.removeprefix("train/style_loss/")] = values
    return history


def cross_style_losses(module: StyleTransferModule, images: torch.Tensor) -> torch.Tensor:
    """``(N, N)``: row i, column j = style loss of the images painted in style i against the
    Grams of style j."""
    n = module.num_trained
    losses = torch.zeros(n, n)
    with torch.no_grad():
        for i in range(n):
            features = module.loss_net(module(images, torch.full((len(images),), i)))
            for j in range(n):
                grams = {
                    layer: getattr(module, f"gram_{layer}")[[j] * len(images)]
                    for layer in module.style_layers
                }
                losses[i, j] = style_loss(features, grams).mean()
    return losses


def test_training_lowers_every_styles_loss_and_styles_differ(trained, world):
    run, module, datamodule = trained
    history = per_style_history(run)
    assert sorted(history) == ["gold", "sunlit"]
    for name, values in history.items():
        assert values[0][0] == 0, f"{name} first logged at step {values[0][0]}"
        first, last = values[0][1], np.mean([v for _, v in values[-5:]])
        assert last <= 0.7 * first, f"{name}: style loss {first:.4g} → {last:.4g}"

    module.eval()
    losses = cross_style_losses(module, next(iter(datamodule.val_dataloader())))
    for style in range(2):  # each style's paintings match its own Grams best
        assert losses[:, style].argmin() == style, losses

    stylizer, saved = load_stylizer(run / "checkpoints" / "last.ckpt")
    assert set(saved["stylizer"]) == CHECKPOINT_KEYS
    assert saved["stylizer"]["style_names"] == ["gold", "sunlit"]
    assert saved["stylizer"]["num_styles"] == 2
    assert not any(key.startswith("loss_net.") for key in saved["state_dict"])
    with torch.no_grad():
        image = content_image(world)
        gold, sunlit = (stylizer(image, torch.tensor([style])) for style in range(2))
    assert gold.std() > 0.05 and sunlit.std() > 0.05  # not flat images
    assert (gold - sunlit).abs().mean() > 0.05
    assert (run / "samples" / "epoch_011.png").is_file()
    assert len(list((run / "checkpoints").glob("epoch*.ckpt"))) == 1


def finetune(world: Path, base: Path, run_dir: Path, steps: int):
    """``+experiment=miro_style_finetune`` of checkpoint ``base`` on ``new_style/``, trained
    ``steps`` steps as ``miro.train`` does; returns its config."""
    cfg = compose_config(
        "train",
        quick(
            world,
            f"ckpt={base}",
            f"style_images=[{world / 'new_style'}]",
            f"trainer.max_steps={steps}",
            "logger=none",
            experiment="miro_style_finetune",
        ),
        run_dir,
    )
    train(cfg)
    return cfg


def test_finetuning_adds_a_style_and_keeps_the_old_ones_bit_for_bit(trained, world, tmp_path):
    base = trained[0] / "checkpoints" / "last.ckpt"
    cfg = finetune(world, base, tmp_path, steps=20)
    old, old_saved = load_stylizer(base)
    old_names = old_saved["stylizer"]["style_names"]
    new, saved = load_stylizer(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    new_name = "blue_ii"
    assert saved["stylizer"]["style_names"] == [*old_names, new_name]
    assert saved["stylizer"]["num_styles"] == 3

    image = content_image(world)
    with torch.no_grad():
        for style in range(2):
            styles = torch.tensor([style])
            assert torch.equal(new(image, styles), old(image, styles)), f"style {style} moved"
        old_state, new_state = old.state_dict(), new.state_dict()
        for key, value in old_state.items():
            if key.endswith((".gamma", ".beta")):
                assert torch.equal(new_state[key][:2], value)
                assert not torch.allclose(new_state[key][2], value.mean(0))  # it learned
            else:
                assert torch.equal(new_state[key], value), key  # convolutions frozen


def test_finetuning_a_thin_checkpoint_keeps_it_thin(world, tmp_path):
    """Fine-tuned with the default model config, a thin stylizer stays thin: its width, depth
    and separable blocks come from the checkpoint."""
    thin = compose_config(
        "train",
        quick(world, "model=stylizer_thin", "trainer.max_steps=2", "logger=none"),
        tmp_path / "thin",
    )
    train(thin)
    base = Path(thin.paths.output_dir) / "checkpoints" / "last.ckpt"
    cfg = finetune(world, base, tmp_path / "grown", steps=2)
    _, saved = load_stylizer(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert saved["stylizer"]["separable"] and saved["stylizer"]["width"] == 8
    assert saved["stylizer"]["num_styles"] == 3


def test_absurd_style_weight_stops_with_the_knob_to_lower(world, tmp_path):
    cfg = compose_config(
        "train",
        quick(world, "module.style_weight=1e39", "trainer.max_steps=3", "logger=none"),
        tmp_path,
    )
    # Checked on the host only every log_every_n_steps (10) or at epoch end, yet it names the
    # first step whose loss overflowed.
    expected = r"became inf at step 0: lower module\.style_weight \(now 1e\+39\)"
    with pytest.raises(StyleTrainingDiverged, match=expected):
        train(cfg)


def test_outputs_collapsing_to_flat_images_stop_training(world, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200), (240, 220, 40), (20, 20, 20)] * 2):
        Image.new("RGB", (48, 48), colour).save(flat / f"{i}.png")
    # The untrained stylizer turns flat images into nearly flat ones (per-channel std ~0.007);
    # lr=0 keeps them so. Training would move them by amounts that depend on the CPU: Adam's
    # first steps are full-sized even where the gradient is rounding noise.
    overrides = quick(
        world,
        f"data.image_dir={flat}",
        "module.optimizer.lr=0",
        "callbacks.divergence_watchdog.collapse_patience=3",
        "logger=none",
    )
    cfg = compose_config("train", [*overrides, "trainer.max_steps=10"], tmp_path)
    with pytest.raises(StyleTrainingDiverged, match="collapsed to flat colour") as raised:
        train(cfg)
    assert "module.style_weight" in str(raised.value)
    assert "step 2" in str(raised.value)


def test_missing_style_paintings_are_named_with_their_folder(world, tmp_path):
    overrides = [f"data.image_dir={world / 'content'}", "model.loss_net.weights=null"]
    cfg = compose_config("train", ["+experiment=miro_style", *overrides], tmp_path)
    with pytest.raises(Exception) as raised:
        train(cfg)
    cause = raised.value  # instantiate wraps it; `python -m miro.train` prints the cause
    while cause is not None and not isinstance(cause, StyleImagesNotFoundError):
        cause = cause.__cause__
    assert isinstance(cause, StyleImagesNotFoundError)
    assert "the_harlequins_carnival.jpg" in str(cause) and "landscape_the_hare.jpg" in str(cause)
    assert str(tmp_path / "data" / "styles") in str(cause)


def test_cli_as_a_user_types_it(world, tmp_path):
    """`python -m miro.train +experiment=miro_style ...`, W&B offline, samples logged to it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "miro.train",
            *quick(world, "trainer.max_steps=5", f"paths.root_dir={tmp_path}"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "random weights" in result.stdout + result.stderr
    run_dir = Path(result.stdout.split("outputs: ")[1].splitlines()[0])
    assert run_dir.is_relative_to(tmp_path / "outputs" / "miro_style")
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "samples" / "epoch_000.png").is_file()
    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    assert list(offline_run.rglob("samples*.png")), "the sample grid was not logged to W&B"


def test_training_crops_avoid_flat_patches():
    """A flat crop would make every instance norm of the stylizer a 1/sqrt(eps) gain."""
    torch.manual_seed(0)
    image = torch.full((3, 64, 64), 200, dtype=torch.uint8)
    image[:, 48:, 48:] = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)  # one busy corner
    crops = [VariedRandomCrop(24, attempts=50)(image) for _ in range(20)]
    assert all(crop.float().flatten(1).std(dim=1).max() >= 2.0 for crop in crops)
    flat = torch.full((3, 64, 64), 7, dtype=torch.uint8)
    assert VariedRandomCrop(24)(flat).shape == (3, 24, 24)  # nothing varied: still a crop


@pytest.mark.parametrize(("batch", "per_pass"), [(4, 1), (4, 2), (3, 2)])
def test_cpu_passes_give_the_whole_batchs_losses_and_gradients(world, tmp_path, batch, per_pass):
    """``module.cpu_images_per_pass`` splits the batch only in how it is computed: the losses,
    the outputs and every stylizer gradient match the whole batch's (3 images in passes of 2:
    the passes' means are weighted by their share of the images)."""
    torch.manual_seed(0)
    module = instantiate(compose_config("train", quick(world), tmp_path).module)
    images = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    styles = torch.tensor([0, 1, 1, 0][:batch])

    def step(images_per_pass: int | None):
        module.cpu_images_per_pass = images_per_pass
        module.stylizer.zero_grad()
        outputs, parts = module.losses(images, styles)
        (parts["content"] + module.style_weight * parts["style"].mean() + parts["tv"]).backward()
        return outputs.detach(), parts, [p.grad.clone() for p in module.stylizer.parameters()]

    whole_outputs, whole, whole_grads = step(None)
    outputs, parts, grads = step(per_pass)
    assert torch.allclose(outputs, whole_outputs, atol=1e-6)
    for name in ("content", "style", "tv"):
        assert torch.allclose(parts[name], whole[name], rtol=1e-5), name
    # float32 through a random VGG-16 and a dozen instance norms of 32 px images rounds to
    # about 1e-3 of the largest gradient; a wrong gradient is off by as much as itself
    scale = max(whole_grad.abs().max() for whole_grad in whole_grads)
    for grad, whole_grad in zip(grads, whole_grads, strict=True):
        torch.testing.assert_close(grad, whole_grad, atol=1e-2 * scale, rtol=1e-2)


def test_a_pass_of_no_images_is_refused(world, tmp_path):
    cfg = compose_config("train", quick(world), tmp_path)
    with pytest.raises(InstantiationException, match="cpu_images_per_pass=0"):
        instantiate(cfg.module, cpu_images_per_pass=0)
