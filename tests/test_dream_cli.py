"""`python -m miro.dream` as a user types it, and the run it drives: stills, layer sheets, zoom
videos, dreamed videos and compositions with a stylizer, on random-weight networks and tiny
images."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from data_pipeline.synthetic.clip import write_clip
from miro.deepdream import DreamSettings, googlenet, vgg16
from miro.deepdream.run import DreamJob, Stylization, objective_spec, run_dream
from miro.images import load_image
from miro.models.stylizer import Stylizer
from miro.video import probe_video, read_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
TINY = ["size=48", "settings.octaves=2", "settings.steps=2", "progress=false"]
QUICK = DreamSettings(octaves=2, steps=3)


def dream_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "miro.dream", f"hydra.run.dir={cwd / 'run'}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def stylizer_checkpoint(tmp_path_factory) -> Path:
    """A two-style stylizer checkpoint in the training side's contract, with random tables."""
    torch.manual_seed(0)
    stylizer = Stylizer(num_styles=2, width=8, num_residual=1)
    with torch.no_grad():
        for table in stylizer.norm_parameters():
            table.add_(0.5 * torch.randn_like(table))
    path = tmp_path_factory.mktemp("stylizer") / "last.ckpt"
    torch.save(
        {
            "stylizer": {"num_styles": 2, "width": 8, "num_residual": 1, "style_names": ["a", "b"]},
            "state_dict": {f"stylizer.{k}": v for k, v in stylizer.state_dict().items()},
        },
        path,
    )
    return path


def test_the_cli_dreams_from_noise_and_writes_its_parameters(tmp_path):
    done = dream_cli(
        "dreamer=googlenet", "dreamer.weights=null", f"output={tmp_path}", *TINY, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    image = Image.open(tmp_path / "noise_dream.png")
    assert image.size == (48, 48)
    params = json.loads((tmp_path / "dream.json").read_text())
    assert params["objective"] == "layer(inception4c)"
    assert params["settings"]["steps"] == 2
    assert "noise_dream.png" in done.stdout


def test_the_cli_names_the_valid_layers_of_a_bad_one(tmp_path):
    done = dream_cli(
        "dreamer=vgg16",
        "dreamer.weights=null",
        "layer=relu9_9",
        f"output={tmp_path}",
        *TINY,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "relu9_9" in done.stderr and "relu4_3" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_encoder_needs_a_checkpoint(tmp_path):
    done = dream_cli(f"output={tmp_path}", *TINY, cwd=tmp_path)
    assert done.returncode != 0
    assert "ckpt=PATH" in done.stderr and "instagram_text" in done.stderr


def test_objective_kinds_become_expressions():
    assert objective_spec("channel", "inception4c", 7) == "channel(inception4c, 7)"
    assert objective_spec("text", "output", words="red star") == "text('red star')"
    assert objective_spec("0.5*layer(conv1)", "inception4c") == "0.5*layer(conv1)"
    with pytest.raises(ValueError, match="words="):
        objective_spec("text", "output")


def test_layers_all_dreams_each_overview_layer_into_a_sheet(tmp_path):
    model = vgg16(weights=None)
    written = run_dream(model, DreamJob(output=tmp_path, size=32, layers="all", settings=QUICK))
    names = {path.name for path in written}
    assert {f"noise_{layer}.png" for layer in model.overview_layers} <= names
    assert "noise_layers.png" in names
    first = load_image(tmp_path / "noise_relu1_2.png")
    last = load_image(tmp_path / "noise_relu5_3.png")
    assert (first - last).abs().mean() > 1e-3  # each layer dreams its own image


def test_octaves_are_saved_on_request(tmp_path):
    run_dream(
        googlenet(weights=None),
        DreamJob(output=tmp_path, size=40, save_octaves=True, settings=QUICK),
    )
    assert Image.open(tmp_path / "noise_octave0.png").size == (29, 29)  # 40 / 1.4
    assert Image.open(tmp_path / "noise_dream.png").size == (40, 40)


def test_a_zoom_writes_its_frames_as_a_gif(tmp_path):
    zoom = {
        "frames": 3,
        "zoom": 1.1,
        "degrees": 2.0,
        "octaves": 1,
        "steps": 2,
        "fps": 8,
        "file": "z.gif",
    }
    run_dream(
        googlenet(weights=None), DreamJob(output=tmp_path, size=32, settings=QUICK, zoom=zoom)
    )
    assert Image.open(tmp_path / "z.gif").n_frames == 3


def test_dream_then_stylize_stylizes_the_dream(tmp_path, stylizer_checkpoint):
    styles = Stylization.load(str(stylizer_checkpoint), style="all")
    job = DreamJob(output=tmp_path, size=32, settings=QUICK, stylization=styles)
    names = {path.name for path in run_dream(googlenet(weights=None), job)}
    assert {"noise_dream.png", "noise_dream_a.png", "noise_dream_b.png"} <= names
    dreamed = load_image(tmp_path / "noise_dream.png")[None]
    expected = dict(styles.apply(dreamed))
    for label in ("a", "b"):
        written = load_image(tmp_path / f"noise_dream_{label}.png")
        assert (written - expected[label][0]).abs().mean() < 0.02
    assert (expected["a"] - expected["b"]).abs().mean() > 0.01


def test_stylize_then_dream_dreams_on_the_stylized_start(tmp_path, stylizer_checkpoint):
    styles = Stylization.load(str(stylizer_checkpoint), style="b")
    job = DreamJob(
        output=tmp_path, size=32, settings=QUICK, stylization=styles, order="stylize_then_dream"
    )
    names = {path.name for path in run_dream(googlenet(weights=None), job)}
    assert {"noise_b.png", "noise_b_dream.png"} <= names
    plain = run_dream(
        googlenet(weights=None), DreamJob(output=tmp_path / "plain", size=32, settings=QUICK)
    )
    assert (load_image(plain[0]) - load_image(tmp_path / "noise_b_dream.png")).abs().mean() > 0.01


def test_a_stylizer_without_a_look_is_refused(stylizer_checkpoint):
    with pytest.raises(ValueError, match=r"stylize\.style"):
        Stylization.load(str(stylizer_checkpoint))


def test_the_cli_dreams_toward_a_word_with_the_encoder(tmp_path, encoder_checkpoint):
    path, _ = encoder_checkpoint
    done = dream_cli(
        f"ckpt={path}",
        "objective=text",
        "words=red star",
        f"output={tmp_path}",
        *TINY,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "dream.json").read_text())["objective"].startswith("text(")
    unknown = dream_cli(
        f"ckpt={path}", "objective=text", "words=zebra", f"output={tmp_path}", *TINY, cwd=tmp_path
    )
    assert unknown.returncode != 0 and "zebra" in unknown.stderr


def test_the_cli_dreams_a_video_into_one_with_its_frames_rate_and_sound(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=6, size=48, fps=8)
    out = tmp_path / "out"
    done = dream_cli(
        "dreamer=googlenet",
        "dreamer.weights=null",
        f"input={clip}",
        f"output={out}",
        "video.octaves=1",
        "video.steps=8",
        "progress=false",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    dreamed = probe_video(out / "clip_dream.mp4")
    assert (dreamed.frames, dreamed.fps, dreamed.size, dreamed.has_audio) == (
        6,
        8.0,
        (48, 48),
        True,
    )
    assert json.loads((out / "dream.json").read_text())["video"]["frames"] == 6
    write_video(read_frames(clip), tmp_path / "plain.mp4", fps=8)  # the same encoding, no dream
    first = next(read_frames(out / "clip_dream.mp4"))
    assert (first - next(read_frames(tmp_path / "plain.mp4"))).abs().mean() > 0.004


def test_a_video_dream_refuses_what_only_images_do(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=2, size=32)
    job = DreamJob(output=tmp_path, input=str(clip), layers="all", save_octaves=True)
    with pytest.raises(ValueError, match="layers, save_octaves work on images only"):
        run_dream(googlenet(weights=None), job)
