"""Write frames as an animation: MP4 (H.264, through imageio and its bundled ffmpeg) or GIF
(Pillow), chosen by the file's suffix.

Example::

    count = write_video(zoom_frames(model, photo, frames=30), "zoom.mp4", fps=12)
"""

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from miro.images import to_array, to_pil

SUFFIXES = (".mp4", ".gif")


def write_video(frames: Iterable[torch.Tensor], path: str | Path, fps: float = 12) -> int:
    """Write ``frames`` (each ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1], all one size) to
    ``path``; ``.mp4`` streams frame by frame (sides cropped to even numbers, as H.264 needs),
    ``.gif`` loops forever. Returns the number of frames written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"cannot write {path}: the suffix must be one of {SUFFIXES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        images = [to_pil(frame) for frame in frames]
        if not images:
            raise ValueError(f"no frames to write to {path}")
        duration = round(1000 / fps)
        images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
        return len(images)
    import imageio.v2 as imageio  # imports its ffmpeg plugin only when a video is written

    count = 0
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
        for frame in frames:
            array = to_array(frame)
            height, width = array.shape[:2]
            writer.append_data(np.ascontiguousarray(array[: height // 2 * 2, : width // 2 * 2]))
            count += 1
    if count == 0:
        path.unlink(missing_ok=True)
        raise ValueError(f"no frames to write to {path}")
    return count
