"""Applying a trained N-style network: styles and mixes, strength, colour, tiling, folders,
export, errors, and the command line as a user types it.

Checkpoints are made here, in the contract of the training side (random weights, norm tables
perturbed so that the styles differ); nothing depends on the training code.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import command_env, compose_config, run_module
from PIL import Image

from miro.models.checkpoints import CheckpointError, load_stylizer
from miro.models.stylizer import Stylizer
from miro.style.apply import RGB_TO_YCBCR, color_transform, stylize
from miro.style.errors import InputError, SettingsError, StyleChoiceError
from miro.style.export import export_stylizer
from miro.style.run import stylize_path
from miro.style.styles import choose_styles
from miro.style.tiling import Tiling
from miro.stylize import run

NAMES = ["blue_ii", "the_farm", "constellation"]
EIGHT_BIT = 1 / 255  # one level of the saved 8-bit images


def random_stylizer(num_styles=3, width=8, num_residual=2, seed=0, separable=False) -> Stylizer:
    torch.manual_seed(seed)
    stylizer = Stylizer(num_styles, width, num_residual, separable).eval()
    with torch.no_grad():  # trained tables differ per style; fresh ones are all γ=1, β=0
        for table in stylizer.norm_parameters():
            table.add_(0.5 * torch.randn_like(table))
    return stylizer


def write_checkpoint(
    path: Path, stylizer: Stylizer, names=NAMES, width=8, num_residual=2, separable=False
) -> Path:
    """A Lightning-shaped checkpoint: other modules' weights beside ``stylizer.*``."""
    state = {f"stylizer.{key}": value for key, value in stylizer.state_dict().items()}
    state["loss_net.features.0.weight"] = torch.zeros(4, 3, 3, 3)
    checkpoint = {
        "epoch": 1,
        "global_step": 10,
        "pytorch-lightning_version": "2.6.6",
        "state_dict": state,
        "stylizer": {
            "num_styles": stylizer.num_styles,
            "width": width,
            "num_residual": num_residual,
            "separable": separable,
            "style_names": list(names),
        },
    }
    torch.save(checkpoint, path)
    return path


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    return write_checkpoint(tmp_path / "last.ckpt", random_stylizer())


def content_image(height: int, width: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """A smooth colourful picture with some texture, (B, 3, H, W) in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, max(2, height // 8), max(2, width // 8), generator=generator)
    smooth = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    noise = torch.rand(batch, 3, height, width, generator=generator)
    return (0.2 + 0.6 * smooth + 0.1 * noise).clamp(0, 1)


def write_png(path: Path, image: torch.Tensor) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    Image.fromarray(array).save(path)
    return path


def read_png(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)


@torch.inference_mode()
def test_a_mix_of_one_style_is_that_style_and_half_half_is_neither():
    stylizer, images = random_stylizer(), content_image(48, 64)
    for i, name in enumerate(NAMES):
        alone = stylize(stylizer, images, torch.tensor([i]))
        for mix in ({i: 1.0}, {name: 0.25}):  # weights are normalized: 0.25 alone is 1
            (choice,) = choose_styles(None, mix, NAMES)
            assert torch.equal(stylize(stylizer, images, choice.vector), alone)
    (half,) = choose_styles(None, {0: 1, "the_farm": 1}, NAMES)
    assert half.vector.tolist() == [0.5, 0.5, 0.0]
    mixed = stylize(stylizer, images, half.vector)
    for i in (0, 1):
        assert (mixed - stylize(stylizer, images, torch.tensor([i]))).abs().mean() > 0.01


@torch.inference_mode()
def test_strength_blends_from_the_content_to_the_style():
    stylizer, images = random_stylizer(), content_image(40, 40)
    full = stylize(stylizer, images, torch.tensor([1]))
    assert (full - images).abs().mean() > 0.05
    assert torch.equal(stylize(stylizer, images, torch.tensor([1]), strength=0.0), images)
    assert torch.equal(stylize(stylizer, images, torch.tensor([1]), strength=1.0), full)
    half = stylize(stylizer, images, torch.tensor([1]), strength=0.5)
    torch.testing.assert_close(half, (full + images) / 2)


@torch.inference_mode()
def test_preserve_color_keeps_the_contents_chroma_and_the_styles_luminance():
    stylizer, images = random_stylizer(), content_image(64, 48, seed=1)
    stylized = stylize(stylizer, images, torch.tensor([2]))
    kept = stylize(stylizer, images, torch.tensor([2]), preserve_color=True)
    ycbcr = {
        name: color_transform(x, RGB_TO_YCBCR)
        for name, x in (("content", images), ("stylized", stylized), ("kept", kept))
    }
    # Where no channel was clipped to 0 or 1, the colour transfer is exact.
    inside = ((kept > 1e-6) & (kept < 1 - 1e-6)).all(dim=1, keepdim=True)
    assert inside.float().mean() > 0.5
    chroma_error = (ycbcr["kept"][:, 1:] - ycbcr["content"][:, 1:]).abs()
    luma_error = (ycbcr["kept"][:, :1] - ycbcr["stylized"][:, :1]).abs()
    assert chroma_error.masked_select(inside).max() < 1e-5
    assert luma_error.masked_select(inside).max() < 1e-5
    # ... and the stylized chroma really was different.
    assert (ycbcr["stylized"][:, 1:] - ycbcr["content"][:, 1:]).abs().mean() > 0.02


@torch.inference_mode()
def test_tiled_and_whole_image_outputs_agree():
    """Tolerance: one 8-bit level. Shared statistics make the network the same function on
    every tile; what is left is the tiles' own border padding, which the blending window keeps
    out where the overlap (96 px) exceeds the ~48 px over which padding is felt."""
    stylizer = random_stylizer(width=32, num_residual=5)  # the default network's reach
    images = content_image(250, 236, seed=2)
    whole = stylize(stylizer, images, torch.tensor([1]))
    tiling = Tiling(enabled=True, tile_size=192, overlap=96)
    tiled = stylize(stylizer, images, torch.tensor([1]), tiling=tiling)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < EIGHT_BIT
    # auto tiles only above the pixel count
    assert Tiling(tile_size=64, overlap=16, above_pixels=250 * 236).applies(250, 237)
    assert not Tiling(tile_size=64, overlap=16, above_pixels=250 * 236).applies(250, 236)


@torch.inference_mode()
def test_one_tile_with_recorded_statistics_is_the_whole_image_for_each_image_of_a_batch():
    """A tile covering the image, normalized with the statistics the recording pass kept for
    that image, is the whole-image output: recording and freezing lose nothing, per image."""
    stylizer = random_stylizer()
    images = content_image(96, 80, seed=4, batch=2)
    styles = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.3, 0.7]])
    whole = stylize(stylizer, images, styles)
    tiled = stylize(stylizer, images, styles, tiling=Tiling(enabled=True, tile_size=96, overlap=0))
    assert (tiled - whole).abs().max() < 1e-5
    assert (whole[0] - whole[1]).abs().mean() > 0.01


@torch.inference_mode()
def test_any_size_comes_back_at_its_size_aligned_with_the_image():
    """The network takes multiples of 4, at least 8: an image is extended at its bottom and
    right, mirrored (or, too small to mirror, its edge repeated), stylized, and cropped back,
    so each output pixel is the stylization of the input pixel at the same place."""
    stylizer = random_stylizer()
    grids = {(33, 50): (36, 52), (61, 47): (64, 48), (5, 7): (8, 8), (8, 8): (8, 8)}
    grids[1, 30] = (8, 32)  # one row: repeated, not mirrored
    for (height, width), (grid_height, grid_width) in grids.items():
        images = content_image(height, width, seed=height)
        out = stylize(stylizer, images, torch.tensor([0]))
        assert out.shape == images.shape
        mode = "replicate" if height == 1 else "reflect"
        extended = F.pad(images, (0, grid_width - width, 0, grid_height - height), mode=mode)
        expected = stylizer(extended, torch.tensor([0]))[..., :height, :width]
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
        assert (out - images).abs().mean() > 0.05  # stylized, not handed back


def test_a_folder_with_a_corrupt_file_is_stylized_and_the_file_reported(checkpoint, tmp_path):
    photos = tmp_path / "photos"
    sizes = {"a.png": (40, 52), "b.png": (40, 52), "c.png": (37, 45), "sub/d.jpg": (30, 30)}
    for i, (name, (height, width)) in enumerate(sizes.items()):
        write_png(photos / name, content_image(height, width, seed=i)[0])
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos / "a.txt").write_text("a caption, not an image")
    output = photos / "styled"  # inside the input: a second run must not stylize its outputs

    for _ in range(2):
        report = stylize_path(
            checkpoint, photos, output, style="the_farm", batch_size=4, progress=False
        )
        assert sorted(report.written) == [
            "a_the_farm.png",
            "b_the_farm.png",
            "c_the_farm.png",
            "sub/d_the_farm.png",
        ]
        assert list(report.skipped) == ["broken.jpg"]
        assert "broken.jpg" in report.summary() and "skipped 1" in report.summary()

    parameters = json.loads((output / "stylize.json").read_text())
    assert parameters["looks"] == {"the_farm": {"the_farm": 1.0}}
    assert parameters["skipped"].keys() == {"broken.jpg"}
    # Batched (a, b share a size) or alone, each output is that image stylized at its size.
    stylizer = load_stylizer(checkpoint).stylizer
    for name in ("a.png", "b.png", "c.png"):
        content = read_png(photos / name)[None].float() / 255
        with torch.inference_mode():
            expected = stylize(stylizer, content, torch.tensor([1]))[0] * 255
        written = read_png(output / name.replace(".png", "_the_farm.png"))
        assert written.shape == content.shape[1:]
        assert (written.float() - expected).abs().max() <= 1.01


def test_style_all_writes_one_file_per_style_and_max_size_caps_the_long_side(checkpoint, tmp_path):
    photo = write_png(tmp_path / "photo.png", content_image(50, 70)[0])
    report = stylize_path(
        checkpoint, photo, tmp_path / "out", style="all", max_size=35, progress=False
    )
    assert sorted(report.written) == sorted(f"photo_{name}.png" for name in NAMES)
    for name in report.written:
        assert Image.open(tmp_path / "out" / name).size == (35, 25)


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_exported_models_match_pytorch(checkpoint, tmp_path, format):
    if format == "onnx":
        pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime") if format == "onnx" else None
    stylizer = load_stylizer(checkpoint).stylizer

    def run_exported(path: Path, *inputs: torch.Tensor) -> torch.Tensor:
        if format == "torchscript":
            return torch.jit.load(str(path))(*inputs)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        feed = {name: x.numpy() for name, x in zip(names, inputs, strict=True)}
        return torch.from_numpy(session.run(None, feed)[0])

    # Style weights as an input, dynamic batch, height and width (also not multiples of 4).
    path = export_stylizer(checkpoint, tmp_path / "any", format)
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["style_names"] == NAMES and "style_weights" in info["inputs"]
    weights = torch.tensor([[0.0, 1.0, 0.0], [0.7, 0.0, 0.3]])
    for images, rows in (
        (content_image(64, 64), weights[:1]),
        (content_image(50, 70, 1, 2), weights),
    ):
        with torch.inference_mode():
            expected = stylize(stylizer, images, rows)
        exported = run_exported(path, images, rows)
        assert exported.shape == images.shape
        assert (exported - expected).abs().max() <= 1e-3

    # A look baked in, with strength and colour preservation.
    path = export_stylizer(
        checkpoint, tmp_path / "baked", format, mix={0: 1, 2: 1}, strength=0.8, preserve_color=True
    )
    assert path.name.startswith("stylizer_mix-blue_ii50-constellation50")
    images = content_image(44, 36, seed=3)
    with torch.inference_mode():
        expected = stylize(stylizer, images, torch.tensor([0.5, 0.0, 0.5]), 0.8, True)
    assert (run_exported(path, images) - expected).abs().max() <= 1e-3


def test_errors_name_the_problem_and_the_fix(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match=r"none\.ckpt does not exist.*miro_style"):
        load_stylizer(tmp_path / "none.ckpt")
    torch.save({"state_dict": {"model.weight": torch.zeros(1)}}, tmp_path / "encoder.ckpt")
    with pytest.raises(CheckpointError, match="is not a stylizer checkpoint"):
        load_stylizer(tmp_path / "encoder.ckpt")
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="could not read"):
        load_stylizer(tmp_path / "text.ckpt")
    listing = "0=blue_ii, 1=the_farm, 2=constellation"
    for style in (3, "dog", "-1"):
        with pytest.raises(StyleChoiceError, match=listing):
            choose_styles(style, None, NAMES)
    with pytest.raises(StyleChoiceError, match=listing):
        choose_styles(None, {0: 0.5, 9: 0.5}, NAMES)
    with pytest.raises(StyleChoiceError, match=listing):  # no style chosen: say which there are
        stylize_path(checkpoint, tmp_path, tmp_path / "out")
    with pytest.raises(InputError, match=r"input .*missing does not exist"):
        stylize_path(checkpoint, tmp_path / "missing", tmp_path / "out", style=0)


def test_composed_config_with_a_typed_mix(checkpoint, tmp_path):
    photo = write_png(tmp_path / "photo.png", content_image(24, 32)[0])
    cfg = compose_config(
        "stylize",
        [
            f"ckpt={checkpoint}",
            f"input={photo}",
            f"output={tmp_path / 'out'}",
            "mix={0: 0.7, constellation: 0.3}",
            "progress=false",
        ],
        tmp_path,
    )
    assert cfg.max_size == 1024 and cfg.tile == "auto" and cfg.device == "auto"
    assert f"outputs: {tmp_path / 'out'}" in run(cfg)
    assert (tmp_path / "out" / "photo_mix-blue_ii70-constellation30.png").is_file()
    looks = json.loads((tmp_path / "out" / "stylize.json").read_text())["looks"]
    assert looks == {
        "mix-blue_ii70-constellation30": pytest.approx({"blue_ii": 0.7, "constellation": 0.3})
    }


def test_cli_as_a_user_types_it(checkpoint, tmp_path):
    photos = tmp_path / "photos"
    write_png(photos / "cat.png", content_image(30, 42)[0])
    result = run_module(
        "miro.stylize",
        f"ckpt={checkpoint}",
        f"input={photos}",
        "output=styled",
        "style=1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "outputs: styled" in result.stdout
    assert Image.open(tmp_path / "styled" / "cat_the_farm.png").size == (42, 30)
    assert (tmp_path / "styled" / "stylize.json").is_file()
    run_dirs = list((tmp_path / "outputs" / "stylize").glob("*/*/.hydra/config.yaml"))
    assert len(run_dirs) == 1, "the resolved config lands in outputs/stylize/<date>/<time>/"


def test_cli_errors_exit_without_a_traceback(checkpoint, tmp_path):
    photo = write_png(tmp_path / "cat.png", content_image(16, 16)[0])
    result = run_module(
        "miro.stylize", f"ckpt={checkpoint}", f"input={photo}", "style=7", cwd=tmp_path
    )
    assert result.returncode != 0
    assert "0=blue_ii, 1=the_farm, 2=constellation" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_module(
        "miro.stylize", f"ckpt={tmp_path / 'none.ckpt'}", f"input={photo}", "style=0", cwd=tmp_path
    )
    assert result.returncode != 0
    assert str(tmp_path / "none.ckpt") in result.stderr
    assert "python -m miro.train +experiment=miro_style" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def thin_checkpoint(tmp_path) -> Path:
    """The thin architecture (conf/model/stylizer_thin.yaml: width 8, separable)."""
    stylizer = random_stylizer(separable=True)
    return write_checkpoint(tmp_path / "thin.ckpt", stylizer, separable=True)


def painted_by(output: Path) -> Path:
    """The model file a run's stylize.json says painted its images."""
    return Path(json.loads((output / "stylize.json").read_text())["model"])


def test_onnx_runtime_paints_as_torch_and_reuses_its_export(thin_checkpoint, tmp_path):
    photos, cache = tmp_path / "photos", tmp_path / "cache"
    write_png(photos / "a.png", content_image(30, 42)[0])  # not multiples of 4
    write_png(photos / "b.png", content_image(50, 37, seed=1)[0])
    look = {"mix": {0: 0.7, 2: 0.3}, "strength": 0.8, "preserve_color": True}
    onnx = {"runtime": "onnx", "onnx_cache": cache}
    torch_report = stylize_path(thin_checkpoint, photos, tmp_path / "torch", **look)
    onnx_report = stylize_path(thin_checkpoint, photos, tmp_path / "onnx", **look, **onnx)
    assert onnx_report.written == torch_report.written and len(onnx_report.written) == 2
    for name in onnx_report.written:
        difference = read_png(tmp_path / "onnx" / name).int() - read_png(tmp_path / "torch" / name)
        assert difference.abs().max() <= 1, name  # one level of 8 bits
    exported = painted_by(tmp_path / "onnx")
    assert exported.suffix == ".onnx" and exported.parent.parent == cache.resolve()
    assert json.loads(exported.with_suffix(".json").read_text())["strength"] == 0.8

    modified = exported.stat().st_mtime_ns
    stylize_path(thin_checkpoint, photos, tmp_path / "again", **look, **onnx)
    assert painted_by(tmp_path / "again") == exported
    assert exported.stat().st_mtime_ns == modified, "the cached export is reused"
    stylize_path(thin_checkpoint, photos, tmp_path / "full", style=0, **onnx)
    assert painted_by(tmp_path / "full").parent != exported.parent  # other baked settings
    assert len(list(cache.iterdir())) == 2


def test_onnx_runtime_refuses_what_it_cannot_do_naming_the_setting(thin_checkpoint, tmp_path):
    photo = write_png(tmp_path / "photo.png", content_image(40, 40)[0])
    onnx = {"style": 0, "runtime": "onnx", "onnx_cache": tmp_path / "cache"}
    with pytest.raises(SettingsError, match=r"runtime=onnx cannot tile.*tile=auto or false"):
        stylize_path(thin_checkpoint, photo, tmp_path / "out", tiling=Tiling(True), **onnx)
    with pytest.raises(SettingsError, match=r"not device=cuda.*runtime=torch"):
        stylize_path(thin_checkpoint, photo, tmp_path / "out", device="cuda", **onnx)
    with pytest.raises(SettingsError, match=r"40×40 image is above tile_above_pixels=1024"):
        tiling = Tiling("auto", tile_size=16, overlap=4, above_pixels=1024)
        stylize_path(thin_checkpoint, photo, tmp_path / "out", tiling=tiling, **onnx)
    with pytest.raises(SettingsError, match="runtime must be one of torch, onnx, got 'tvm'"):
        stylize_path(thin_checkpoint, photo, tmp_path / "out", style=0, runtime="tvm")


def test_cli_runtime_onnx_and_the_install_hint_without_onnxruntime(thin_checkpoint, tmp_path):
    photo = write_png(tmp_path / "cat.png", content_image(30, 42)[0])
    arguments = [f"ckpt={thin_checkpoint}", f"input={photo}", "output=styled", "style=1"]
    result = run_module("miro.stylize", *arguments, "runtime=onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert Image.open(tmp_path / "styled" / "cat_the_farm.png").size == (42, 30)
    cached = list((tmp_path / ".cache" / "miro" / "onnx").glob("*/stylizer.onnx"))
    assert cached == [painted_by(tmp_path / "styled")]

    # As where onnxruntime is not installed: its import fails.
    without_onnxruntime = (
        "import runpy, sys; sys.modules['onnxruntime'] = None; "
        "runpy.run_module('miro.stylize', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_onnxruntime, *arguments, "runtime=onnx"],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2
    assert "runtime=onnx needs the onnx and onnxruntime packages" in result.stderr
    assert "pip install 'miro[export]'" in result.stderr and "Traceback" not in result.stderr
