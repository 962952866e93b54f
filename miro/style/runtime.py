"""What paints the images of a stylize run: PyTorch (``runtime=torch``, the default) or
onnxruntime (``runtime=onnx``).

``runtime=onnx`` exports the checkpoint with ``miro.style.export`` (style weights as an input,
so one file serves every style and mix; ``strength`` and ``preserve_color`` baked in, as checked
against PyTorch there) into ``<onnx_cache>/<key>/stylizer.onnx``, where the key hashes the
checkpoint's bytes, those two settings and the torch and ONNX opset versions: a second run with
the same checkpoint and settings reuses the file. Then an onnxruntime session on the CPU, at
onnxruntime's default threads, paints each batch. It cannot tile: ``tile=true``, or an image
above ``tile_above_pixels`` under ``tile=auto``, is refused, as is ``device=cuda``.

Example::

    painter = onnx_painter(load_stylizer("last.ckpt"), "auto", 1.0, False, Tiling(), ".cache")
    out = painter.paint(images, choice.vector)   # (B, 3, H, W) in [0, 1]
"""

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from miro.devices import resolve_device
from miro.models.checkpoints import LoadedStylizer
from miro.style.apply import stylize
from miro.style.errors import SettingsError
from miro.style.export import ONNX_OPSET, export_stylizer, onnx_runner
from miro.style.tiling import Tiling

ONNX_FILE = "stylizer.onnx"
INSTALL_HINT = "pip install 'miro[export]'"  # pyproject's extra with onnx and onnxruntime


@dataclass
class Painter:
    """A runtime's painter, ready for the batches of a run.

    Attributes:
        device: where the content images go.
        paint: ``(images (B, 3, H, W) in [0, 1], weights (num_styles,))`` → ``(B, 3, H, W)``.
        model: the file that paints: the checkpoint, or the exported ``.onnx``.
    """

    device: torch.device
    paint: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    model: Path


def torch_painter(
    loaded: LoadedStylizer,
    device: str,
    strength: float,
    preserve_color: bool,
    tiling: Tiling,
    onnx_cache: str | Path,
) -> Painter:
    """``miro.style.apply.stylize`` on ``device`` (auto, cpu, cuda), tiling as ``tiling`` says."""
    resolved = resolve_device(device)
    stylizer = loaded.stylizer.to(resolved)

    def paint(images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return stylize(stylizer, images, weights.to(resolved), strength, preserve_color, tiling)

    return Painter(resolved, paint, loaded.path)


def onnx_painter(
    loaded: LoadedStylizer,
    device: str,
    strength: float,
    preserve_color: bool,
    tiling: Tiling,
    onnx_cache: str | Path,
) -> Painter:
    """The checkpoint exported (or found in ``onnx_cache``) and run by onnxruntime on the CPU."""
    if device not in ("auto", "cpu"):
        raise SettingsError(
            f"runtime=onnx runs on the CPU, not device={device}: use device=auto or cpu, or "
            "runtime=torch"
        )
    if tiling.enabled is True:
        raise SettingsError("runtime=onnx cannot tile: use tile=auto or false, or runtime=torch")
    require_onnx()
    path = cached_onnx_model(loaded.path, Path(onnx_cache), strength, preserve_color)
    run = onnx_runner(path)

    def paint(images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if tiling.applies(height, width):
            raise SettingsError(
                f"a {width}×{height} image is above tile_above_pixels={tiling.above_pixels}, "
                "where runtime=torch tiles; runtime=onnx cannot: lower max_size, or use "
                "runtime=torch"
            )
        return run(images, weights.expand(len(images), -1))

    return Painter(torch.device("cpu"), paint, path)


RUNTIMES = {"torch": torch_painter, "onnx": onnx_painter}  # the painter of each runtime


def require_onnx() -> None:
    """Raise ``SettingsError`` with the install command unless onnx and onnxruntime import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise SettingsError(
            f"runtime=onnx needs the onnx and onnxruntime packages ({err}): {INSTALL_HINT}"
        ) from None


def onnx_cache_key(ckpt: Path, strength: float, preserve_color: bool) -> str:
    """Hash of what the exported file depends on: the checkpoint's bytes, the baked settings,
    the torch version that traces and the ONNX opset."""
    digest = hashlib.sha256()
    with ckpt.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    settings = {
        "strength": strength,
        "preserve_color": preserve_color,
        "torch": torch.__version__,
        "opset": ONNX_OPSET,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def cached_onnx_model(ckpt: Path, cache_dir: Path, strength: float, preserve_color: bool) -> Path:
    """``<cache_dir>/<key>/stylizer.onnx`` (and its ``.json``), exported on the first call and
    written atomically, so an interrupted export leaves no half file."""
    directory = cache_dir / onnx_cache_key(ckpt, strength, preserve_color)
    if not (directory / ONNX_FILE).exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".staging-"))
        try:
            export_stylizer(ckpt, staging, "onnx", strength=strength, preserve_color=preserve_color)
            with contextlib.suppress(OSError):  # another run finished the same export first
                staging.rename(directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone after the rename
    return directory / ONNX_FILE
