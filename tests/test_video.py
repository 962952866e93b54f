"""The video layer: reading and writing clips with their sound (real ffmpeg), optical flow and
its reliability (real OpenCV DIS), the temporal blend and the synthetic clip maker."""

import hashlib

import pytest
import torch
import torch.nn.functional as F
from conftest import run_module

from data_pipeline.synthetic.clip import write_clip
from miro.video import (
    FlowEstimator,
    TemporalBlend,
    TemporalSettings,
    UnreadableVideoError,
    VideoSettingsError,
    estimate_motion,
    probe_video,
    read_frames,
    reliable,
    warp,
    warping_error,
    write_video,
)


def texture(height: int, width: int, seed: int = 0, cell: int = 8) -> torch.Tensor:
    """A smooth colourful picture ``(3, H, W)`` in [0, 1] that flow can lock onto: random
    colours every ``cell`` pixels, bicubic between."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // cell, width // cell, generator=generator)
    smooth = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return smooth.clamp(0, 1)[0]


def test_warping_along_a_known_shift_redraws_the_shifted_image():
    big = texture(96, 96)
    now, before = big[:, 10:74, 10:74], big[:, 10:74, 13:77]  # the camera moved 3 px left
    flow = torch.zeros(64, 64, 2)
    flow[..., 0] = -3.0
    redrawn = warp(before, flow)
    torch.testing.assert_close(redrawn[:, :, 3:], now[:, :, 3:], atol=1e-5, rtol=0)
    assert (redrawn[:, :, :3] - now[:, :, :3]).abs().mean() > 0.01  # the border is not there
    batch = warp(torch.stack([before, before]), flow)
    torch.testing.assert_close(batch[1], redrawn)
    estimated = FlowEstimator("medium")(now, before)  # DIS finds the same shift
    assert (estimated[8:-8, 8:-8] - flow[8:-8, 8:-8]).abs().mean() < 0.1


def moving_square(move: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 96 px frames: a textured square (rows 32-64) over a still textured background, at
    columns 24-56 ``before`` and ``move`` px to the right ``now``, uncovering what it hid."""
    background, square = texture(96, 96, cell=6), texture(32, 32, seed=10, cell=4)
    before, now = background.clone(), background.clone()
    before[:, 32:64, 24:56] = square
    now[:, 32:64, 24 + move : 56 + move] = square
    return before, now


def test_the_mask_flags_what_a_moving_square_uncovers():
    """With the true flows, exactly the uncovered strip fails the forward-backward check; with
    DIS's estimates, most of it does, and the still background passes."""
    forward, backward = torch.zeros(96, 96, 2), torch.zeros(96, 96, 2)
    forward[32:64, 30:62, 0] = -6.0  # now -> before: the square came from 6 px to the left
    backward[32:64, 24:56, 0] = 6.0
    expected = torch.ones(96, 96, dtype=torch.bool)
    expected[32:64, 24:30] = False  # background now, the square before: nothing to match
    assert torch.equal(reliable(forward, backward), expected)
    estimated = estimate_motion(*moving_square(6)).reliable
    assert estimated[34:62, 25:29].float().mean() < 0.5
    assert estimated[:, 75:].float().mean() > 0.95
    assert estimated[34:62, 36:56].float().mean() > 0.95  # the square moved, and is followed


def test_the_temporal_blend_lowers_the_warping_error_and_weight_zero_changes_nothing():
    big = texture(64, 160)
    frames = [big[:, :, 2 * t : 2 * t + 64] for t in range(8)]  # a pan, 2 px a frame
    noise = torch.Generator().manual_seed(0)
    flickering = [(f + 0.1 * torch.randn(f.shape, generator=noise)).clamp(0, 1) for f in frames]
    steady = TemporalBlend(TemporalSettings(weight=0.7))
    blended = [
        steady.keep(f, steady.blend(f, out)) for f, out in zip(frames, flickering, strict=True)
    ]
    assert warping_error(frames, blended) < 0.5 * warping_error(frames, flickering)
    plain = TemporalBlend(TemporalSettings(weight=0))
    for frame, out in zip(frames, flickering, strict=True):
        assert torch.equal(plain.keep(frame, plain.blend(frame, out)), out)
    with pytest.raises(VideoSettingsError, match=r"temporal\.weight"):
        TemporalSettings(weight=1)
    with pytest.raises(VideoSettingsError, match="ultrafast, fast, medium"):
        TemporalSettings(flow="slow")


def test_a_written_video_keeps_its_sources_rate_and_sound(tmp_path):
    source = write_clip(tmp_path / "clip.mp4", frames=6, size=48, fps=10)
    info = probe_video(source)
    assert (info.frames, info.fps, info.size, info.audio_codec) == (6, 10.0, (48, 48), "aac")
    frames = list(read_frames(source))
    assert len(frames) == 6 and frames[0].shape == (3, 48, 48)
    assert next(read_frames(source, max_size=32)).shape == (3, 32, 32)
    copy = tmp_path / "copy.mp4"
    assert write_video((1 - f for f in frames), copy, fps=info.fps, audio_from=info) == 6
    assert probe_video(copy).has_audio and probe_video(copy).frames == 6
    silent = write_clip(tmp_path / "silent.mp4", frames=3, size=32, tone=None)
    assert not probe_video(silent).has_audio
    write_video(read_frames(silent), copy, fps=5, audio_from=probe_video(silent))
    assert not probe_video(copy).has_audio


def test_a_corrupt_or_missing_video_is_an_error_naming_it(tmp_path):
    corrupt = tmp_path / "holiday.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    for path in (corrupt, tmp_path / "gone.mp4"):
        with pytest.raises(UnreadableVideoError, match=path.name):
            probe_video(path)
        with pytest.raises(UnreadableVideoError, match=path.name):
            next(read_frames(path))


def test_the_clip_maker_is_deterministic_as_a_user_types_it(tmp_path):
    first = run_module(
        "data_pipeline.synthetic_clip", f"out={tmp_path / 'a.mp4'}", "frames=6", "size=32"
    )
    assert first.returncode == 0, first.stderr
    write_clip(tmp_path / "b.mp4", frames=6, size=32)
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.mp4", "b.mp4")]
    assert digest[0] == digest[1]
    assert probe_video(tmp_path / "a.mp4").frames == 6
    odd = run_module("data_pipeline.synthetic_clip", f"out={tmp_path / 'c.mp4'}", "size=33")
    assert odd.returncode == 2 and "even size" in odd.stderr and "Traceback" not in odd.stderr
