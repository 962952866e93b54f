"""Where the studio's pictures go before Gradio serves them: one file each, in the run's folder.

Gradio stores a returned array in its cache at a path named by the picture's hash, rewriting that
file in place when the same picture comes again, so a client still downloading the first copy
reads a truncated file (two identical stylizations in flight are enough; the 20-request test
hit it). A returned file path is copied into the cache under a temporary name and renamed
instead, so the studio hands Gradio files of its own. The newest ``keep`` are kept: Gradio copies
each as soon as the callback returns.

Example::

    results = ResultFiles(Path("outputs/studio/.../results"))
    path = results.save(array)     # (H, W, 3) uint8 → ".../000001.png"
    clip = results.new_path(".mp4")   # ".../000002.mp4", for a writer
"""

import threading
from collections import deque
from pathlib import Path

import numpy as np
from PIL import Image


class ResultFiles:
    """Writes pictures (and stylized videos) to numbered files in ``folder``, deleting all but the
    newest ``keep``."""

    def __init__(self, folder: str | Path, keep: int = 256) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.written: deque[Path] = deque()
        self.count = 0
        self.lock = threading.Lock()

    def new_path(self, suffix: str) -> Path:
        """A fresh numbered path ending in ``suffix`` (``.png``, ``.mp4``), the oldest deleted
        beyond ``keep``."""
        with self.lock:
            self.count += 1
            path = self.folder / f"{self.count:06d}{suffix}"
            self.written.append(path)
            stale = self.written.popleft() if len(self.written) > self.keep else None
        if stale is not None:
            stale.unlink(missing_ok=True)
        return path

    def save(self, picture: np.ndarray | Image.Image) -> str:
        """``picture`` (an ``(H, W, 3)`` uint8 array or a PIL image) as a new PNG; its path."""
        path = self.new_path(".png")
        image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
        image.save(path)
        return str(path)
