"""Stylizing a video: frames, rate and sound kept, per-frame output at temporal.weight=0, less
flicker with the temporal blend, and the command line as a user types it (real ffmpeg, real
OpenCV, a random-weight stylizer)."""

import json

import pytest
import torch
from conftest import run_module
from test_stylize import random_stylizer, write_checkpoint

from data_pipeline.synthetic.clip import write_clip
from miro.models.checkpoints import load_stylizer
from miro.style.errors import InputError
from miro.style.run import stylize_path
from miro.style.runtime import torch_painter
from miro.style.tiling import Tiling
from miro.style.video import stylize_video
from miro.video import TemporalSettings, probe_video, read_frames, warping_error, write_video


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 3-style checkpoint, a panning 12-frame 64 px clip with sound and a silent one."""
    root = tmp_path_factory.mktemp("video")
    return {
        "ckpt": write_checkpoint(root / "last.ckpt", random_stylizer()),
        "clip": write_clip(root / "clip.mp4", frames=12, size=64, fps=12),
        "silent": write_clip(root / "silent.mp4", frames=5, size=48, fps=10, tone=None),
    }


def test_a_stylized_clip_keeps_its_frames_rate_and_sound(world, tmp_path):
    report = stylize_path(world["ckpt"], world["clip"], tmp_path, style="all", progress=False)
    assert report.written == ["clip_blue_ii.mp4", "clip_the_farm.mp4", "clip_constellation.mp4"]
    for name in report.written:
        info = probe_video(tmp_path / name)
        assert (info.frames, info.fps, info.size, info.has_audio) == (12, 12.0, (64, 64), True)
    video = json.loads((tmp_path / "stylize.json").read_text())["video"]
    assert video["frames"] == 12 and video["temporal"] == {"weight": 0.7, "flow": "medium"}
    silent = stylize_path(world["ckpt"], world["silent"], tmp_path, style=1, progress=False)
    assert silent.written == ["silent_stylized.mp4"]
    info = probe_video(tmp_path / "silent_stylized.mp4")
    assert (info.frames, info.fps, info.has_audio) == (5, 10.0, False)


def test_weight_zero_is_per_frame_stylization_and_the_blend_steadies_a_pan(world, tmp_path):
    loaded = load_stylizer(world["ckpt"])
    painter = torch_painter(loaded, "cpu", 1.0, False, Tiling(), tmp_path)
    look = torch.tensor([0.0, 0.0, 1.0])
    frames = list(read_frames(world["clip"]))
    with torch.inference_mode():
        alone = [painter.paint(frame[None], look)[0] for frame in frames]
    write_video(alone, tmp_path / "alone.mp4", fps=12)
    for weight, name in ((0.0, "plain.mp4"), (0.7, "steady.mp4")):
        stylize_video(
            painter,
            world["clip"],
            {tmp_path / name: look},
            TemporalSettings(weight),
            batch_size=4,
            progress=False,
        )
    reference = list(read_frames(tmp_path / "alone.mp4"))
    plain = list(read_frames(tmp_path / "plain.mp4"))
    assert len(plain) == 12
    for written, expected in zip(plain, reference, strict=True):  # same frames, same encoder
        assert torch.equal(written, expected)
    steady = list(read_frames(tmp_path / "steady.mp4"))
    assert warping_error(frames, steady) < 0.5 * warping_error(frames, plain)


def test_a_folder_holding_only_videos_is_refused_naming_them(world, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(world["clip"].read_bytes())
    with pytest.raises(InputError, match=r"a\.mp4.*input=FILE"):
        stylize_path(world["ckpt"], folder, tmp_path / "out", style=0, progress=False)


def test_the_cli_stylizes_a_video_as_a_user_types_it(world, tmp_path):
    done = run_module(
        "miro.stylize",
        f"ckpt={world['ckpt']}",
        f"input={world['clip']}",
        f"output={tmp_path}",
        "style=constellation",
        "temporal.weight=0.6",
        "progress=false",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert done.returncode == 0, done.stderr
    assert "12 frames at 12 fps (with sound" in done.stdout
    assert probe_video(tmp_path / "clip_stylized.mp4").frames == 12
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    failed = run_module(
        "miro.stylize",
        f"ckpt={world['ckpt']}",
        f"input={corrupt}",
        "style=0",
        f"output={tmp_path}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "broken.mp4" in failed.stderr and "not a readable video" in failed.stderr
