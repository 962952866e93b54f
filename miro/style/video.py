"""Stylize a video file: frames stream in batches through a painter, each look's frames are
blended along the motion (``miro.video.TemporalBlend``) and streamed into an ``.mp4`` with the
source's frame rate and sound.

The network paints a batch of consecutive frames at once (``batch_size``: 1 on the CPU, 8 on
CUDA, as for images); the temporal blend then runs frame by frame, as each frame carries the
previous one's output. The optical flow is computed once per frame on the CPU and shared by
every look. Memory holds one batch, whatever the clip's length.

Example::

    loaded = load_stylizer("last.ckpt")
    painter = torch_painter(loaded, "auto", 1.0, False, Tiling(), ".cache/miro/onnx")
    (look,) = choose_styles("constellation", None, loaded.style_names)
    report = stylize_video(painter, "clip.mp4", {"clip_stylized.mp4": look.vector})
    print(report.frames, report.frames_per_second)
"""

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from miro.style.runtime import Painter
from miro.video.io import VideoInfo, VideoWriter, probe_video, read_frames
from miro.video.temporal import TemporalBlend, TemporalSettings


@dataclass
class VideoReport:
    """A stylized video run: the ``source`` as probed, the files ``written``, the ``frames``
    written to each and the wall ``seconds`` it took."""

    source: VideoInfo
    written: list[Path]
    frames: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def batches(frames: Iterable[torch.Tensor], size: int) -> Iterator[list[torch.Tensor]]:
    """Consecutive frames, ``size`` at a time (the last batch may be shorter)."""
    batch: list[torch.Tensor] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def stylize_video(
    painter: Painter,
    input: str | Path,
    outputs: Mapping[str | Path, torch.Tensor],
    temporal: TemporalSettings | None = None,
    batch_size: int = 1,
    max_size: int | None = None,
    progress: bool = True,
) -> VideoReport:
    """Stylize the video ``input`` into one ``.mp4`` per look.

    Args:
        painter: paints ``(B, 3, H, W)`` in [0, 1] with style weights (``miro.style.runtime``).
        input: a video file ffmpeg reads (``.mp4``, ``.mov``, ...).
        outputs: each output ``.mp4`` path → its look's style weights ``(num_styles,)``.
        temporal: the blend along the motion (``TemporalSettings(weight=0)``: every frame
            alone); default ``TemporalSettings()``.
        batch_size: frames the network paints at once.
        max_size: cap on the frames' long side in pixels; None keeps the source's size.
        progress: a tqdm bar of frames with frames/s and ETA (a Gradio app's
            ``gr.Progress(track_tqdm=True)`` follows it).

    Each output has the source's frame count, frame rate and audio track. Raises
    ``UnreadableVideoError`` naming ``input`` when it cannot be read.
    """
    if not outputs:
        raise ValueError("stylize_video needs at least one output path and its style weights")
    info = probe_video(input)
    paths, looks = [Path(path) for path in outputs], list(outputs.values())
    state = TemporalBlend(temporal)
    start = time.perf_counter()
    bar = tqdm(total=info.frames, unit="frame", desc="stylize", disable=not progress)
    with ExitStack() as stack, torch.inference_mode():
        stack.enter_context(bar)
        writers = [stack.enter_context(VideoWriter(path, info.fps, info)) for path in paths]
        for batch in batches(read_frames(info.path, max_size), batch_size):
            content = torch.stack(batch).to(painter.device)
            painted = torch.stack([painter.paint(content, look) for look in looks], dim=1)
            for frame, stylized in zip(batch, painted, strict=True):
                kept = state.keep(frame, state.blend(frame, stylized))
                for writer, image in zip(writers, kept, strict=True):
                    writer.write(image)
            bar.update(len(batch))
    return VideoReport(info, paths, writers[0].count, time.perf_counter() - start)
