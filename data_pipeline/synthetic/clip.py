"""A synthetic video clip: a slow pan and zoom over one Miró-like picture, with a sine tone.

Made for tests, benchmarks and the demo: small, fast and the same bytes for the same seed. The
picture is drawn by ``motifs.compose`` (the posts' generator) at twice the frame size; each
frame is a window that slides across it while closing in (sub-pixel steps, bicubic), so the
motion is smooth and known. The tone is written as a WAV and muxed in as AAC by the same ffmpeg
process (imageio-ffmpeg's binary) that encodes the H.264 frames.

Example::

    write_clip("clip.mp4", frames=48, size=128, fps=12, seed=0)   # 4 s, 128 × 128, 440 Hz
"""

import tempfile
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from data_pipeline.synthetic.motifs import compose

SAMPLE_RATE = 16_000


def pan_zoom_frames(
    picture: Image.Image, frames: int, size: int, pan: float, zoom: float
) -> list[np.ndarray]:
    """``frames`` ``(size, size, 3)`` uint8 windows on ``picture``: the window starts as the
    picture's left square at full height and moves right by ``pan`` of its side while it
    shrinks to ``1 / zoom`` of its size, about its centre."""
    height = picture.height
    windows = []
    for index in range(frames):
        progress = index / max(frames - 1, 1)
        side = height / (1 + (zoom - 1) * progress)
        centre_x = height / 2 + pan * height * progress
        box = (centre_x - side / 2, (height - side) / 2, centre_x + side / 2, (height + side) / 2)
        windows.append(np.asarray(picture.resize((size, size), Image.BICUBIC, box=box)))
    return windows


def write_tone(path: Path, seconds: float, frequency: float) -> None:
    """A mono 16-bit WAV of a sine at ``frequency`` Hz, ``seconds`` long."""
    time = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    samples = (0.3 * 32767 * np.sin(2 * np.pi * frequency * time)).astype("<i2")
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes(samples.tobytes())


def write_clip(
    out: str | Path,
    frames: int = 48,
    size: int = 128,
    fps: float = 12,
    seed: int = 0,
    pan: float = 0.5,
    zoom: float = 1.25,
    tone: float | None = 440.0,
) -> Path:
    """Write an H.264 ``.mp4`` of ``frames`` square frames of ``size`` px (even) at ``fps``:
    ``pan_zoom_frames`` over a picture drawn with ``seed``, and a sine of ``tone`` Hz as its
    audio (None: silent). Returns ``out``."""
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"out={out} must end in .mp4")
    if frames < 1 or size < 16 or size % 2 or fps <= 0:
        raise ValueError(
            f"need frames >= 1, an even size >= 16 and fps > 0; got frames={frames}, "
            f"size={size}, fps={fps}"
        )
    if not (0 <= pan <= 1) or zoom < 1:
        raise ValueError(f"need 0 <= pan <= 1 and zoom >= 1; got pan={pan}, zoom={zoom}")
    rng = np.random.default_rng(seed)
    picture, _ = compose(rng, 4 * size, 2 * size, num_motifs=3)
    windows = pan_zoom_frames(picture, frames, size, pan, zoom)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        audio = {}
        if tone is not None:
            write_tone(Path(scratch) / "tone.wav", frames / fps, tone)
            audio = {"audio_path": str(Path(scratch) / "tone.wav"), "audio_codec": "aac"}
        pipe = imageio_ffmpeg.write_frames(
            str(out),
            (size, size),
            fps=fps,
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=["-fflags", "+bitexact", "-flags:v", "+bitexact"],
            **audio,
        )
        pipe.send(None)
        for window in windows:
            pipe.send(np.ascontiguousarray(window))
        pipe.close()
    return out
