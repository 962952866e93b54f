"""Reading and writing video files through the ffmpeg binary that imageio-ffmpeg ships.

A clip is probed once (``probe_video``: frame rate, frame count, size, audio), then streamed:
``read_frames`` decodes one frame at a time through a pipe, so memory holds one frame whatever
the clip's length, and ``VideoWriter`` pipes frames into an H.264 ``.mp4`` while the same ffmpeg
process copies the source's audio track beside them (re-encoded to AAC only where MP4 cannot
hold the source's codec). Frames are ``(3, H, W)`` float RGB in [0, 1], as images are.

Example::

    info = probe_video("clip.mp4")                       # VideoInfo(fps=25.0, frames=48, ...)
    with VideoWriter("out.mp4", info.fps, audio_from=info) as writer:
        for frame in read_frames("clip.mp4"):
            writer.write(1 - frame)                      # the negative, same rate, same sound
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch

from miro.images import to_array, to_pil
from miro.video.errors import UnreadableVideoError

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg"})
# Audio codecs an MP4 holds as they are; others are re-encoded to AAC.
MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})

# read_frames asks ffmpeg to shrink frames on purpose; imageio-ffmpeg warns that sizes differ.
logging.getLogger("imageio_ffmpeg").addFilter(
    lambda record: "frame size for reading" not in record.getMessage()
)


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video file by its suffix (any case)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` found: ``size`` is ``(width, height)`` as decoded (rotation
    applied); ``audio_codec`` is None when the clip is silent."""

    path: Path
    fps: float
    frames: int
    size: tuple[int, int]
    audio_codec: str | None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def _header(path: Path, output_params: list[str] | None = None) -> tuple[dict, Iterator[bytes]]:
    """ffmpeg's description of ``path`` and the generator of its raw RGB frames."""
    if not path.is_file():
        raise UnreadableVideoError(f"{path}: no such file; give a video file as input=PATH")
    frames = imageio_ffmpeg.read_frames(str(path), output_params=output_params)
    try:
        return next(frames), frames
    except (OSError, RuntimeError, IndexError, AttributeError, StopIteration) as err:
        frames.close()
        if " Audio: " in str(err) and " Video: " not in str(err):
            raise UnreadableVideoError(f"{path}: holds sound but no video stream") from None
        last = str(err).strip().splitlines()[-1:] or ["no video stream"]
        raise UnreadableVideoError(f"{path}: not a readable video ({last[0].strip()})") from None


def probe_video(path: str | Path) -> VideoInfo:
    """Frame rate, frame count, decoded size and audio codec of the video at ``path``.

    Counting the frames runs ffmpeg over the file once (no decoding into Python). Raises
    ``UnreadableVideoError`` naming the file when it is missing, corrupt or has no video.
    """
    path = Path(path)
    meta, frames = _header(path)
    frames.close()
    try:
        count, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except RuntimeError as err:
        raise UnreadableVideoError(f"{path}: its frames cannot be counted ({err})") from None
    if not count or meta["fps"] <= 0:
        raise UnreadableVideoError(f"{path}: holds no video frames (or no frame rate)")
    return VideoInfo(path, meta["fps"], count, tuple(meta["size"]), meta.get("audio_codec"))


def read_frames(path: str | Path, max_size: int | None = None) -> Iterator[torch.Tensor]:
    """The frames of ``path`` one at a time, each ``(3, H, W)`` float in [0, 1]; with
    ``max_size``, ffmpeg shrinks them while decoding (area filter, aspect kept, sides even) so
    that the long side is at most ``max_size``, never growing them."""
    scale = None
    if max_size is not None:
        box = f"w='min(iw,{max_size})':h='min(ih,{max_size})'"
        scale = [
            "-vf",
            f"scale={box}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=area",
        ]
    meta, frames = _header(Path(path), scale)
    width, height = meta["size"]
    for data in frames:
        array = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
        yield torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255)


class VideoWriter:
    """Streams frames into an H.264 ``.mp4`` at ``fps``; with ``audio_from`` (a probed source
    that has audio) the same ffmpeg process muxes that source's first audio track in.

    Frames are ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1], all one size; odd sides are cropped
    to even. Use it as a context manager; ``count`` is the number of frames written.
    """

    def __init__(self, path: str | Path, fps: float, audio_from: VideoInfo | None = None) -> None:
        self.path, self.fps, self.count = Path(path), fps, 0
        self.audio = audio_from if audio_from is not None and audio_from.has_audio else None
        self._pipe = None

    def __enter__(self) -> "VideoWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: torch.Tensor) -> None:
        array = to_array(frame)
        height, width = array.shape[0] // 2 * 2, array.shape[1] // 2 * 2
        if self._pipe is None:
            self._pipe = self._open((width, height))
        self._pipe.send(np.ascontiguousarray(array[:height, :width]))
        self.count += 1

    def _open(self, size: tuple[int, int]):
        audio = {}
        if self.audio is not None:
            codec = "copy" if self.audio.audio_codec in MP4_AUDIO else "aac"
            audio = {"audio_path": str(self.audio.path), "audio_codec": codec}
        pipe = imageio_ffmpeg.write_frames(
            str(self.path),
            size,
            fps=self.fps,
            macro_block_size=1,
            ffmpeg_log_level="error",
            **audio,
        )
        pipe.send(None)  # starts ffmpeg
        return pipe

    def __exit__(self, *exc) -> None:
        if self._pipe is not None:
            self._pipe.close()


def write_video(
    frames: Iterable[torch.Tensor],
    path: str | Path,
    fps: float = 12,
    audio_from: VideoInfo | None = None,
) -> int:
    """Write ``frames`` (each ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1], all one size) to
    ``path``: ``.mp4`` streams through ``VideoWriter`` (with ``audio_from``'s sound), ``.gif``
    loops forever (silent). Returns the number of frames written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"cannot write {path}: the suffix must be .mp4 or .gif")
    if suffix == ".gif":
        images = [to_pil(frame) for frame in frames]
        if not images:
            raise ValueError(f"no frames to write to {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        duration = round(1000 / fps)
        images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
        return len(images)
    with VideoWriter(path, fps, audio_from) as writer:
        for frame in frames:
            writer.write(frame)
    if writer.count == 0:
        raise ValueError(f"no frames to write to {path}")
    return writer.count
