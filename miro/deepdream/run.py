"""What ``python -m miro.dream`` does: load the start image, build the objective, dream a still
(or one per layer, with a contact sheet, or zoom frames), compose with a stylizer, and write
every image with the parameters beside it; or, for a video input, dream its frames into a
video with the source's frame rate and sound.

Example::

    written = run_dream(googlenet(), DreamJob(input="cat.jpg", output=Path("out")))
    written = run_dream(googlenet(), DreamJob(input="clip.mp4", output=Path("out")))
"""

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from miro.deepdream.models import DreamModel
from miro.deepdream.octaves import DreamSettings, dream_layers, dream_octaves, noise_image
from miro.deepdream.parse import parse_objective
from miro.deepdream.video import dream_video
from miro.deepdream.zoom import zoom_frames
from miro.images import load_image, save_image
from miro.models.checkpoints import load_stylizer
from miro.report.sheets import labelled_grid
from miro.style.apply import stylize
from miro.style.styles import StyleChoice, choose_styles
from miro.video.io import VideoInfo, is_video, probe_video, read_frames, write_video
from miro.video.temporal import TemporalSettings

log = logging.getLogger(__name__)

# objective=KIND with its keys → the expression parse_objective reads.
OBJECTIVE_KINDS = {
    "layer": "layer({layer})",
    "channel": "channel({layer}, {unit})",
    "neuron": "neuron({layer}, {unit})",
    "guide": "guide({layer})",
    "text": "text({words!r})",
}
ORDERS = ("dream_then_stylize", "stylize_then_dream")


class DreamInputError(ValueError):
    """A setting of the dream command that cannot work, with what to give instead."""


def objective_spec(kind: str, layer: str, unit: int = 0, words: str | None = None) -> str:
    """The expression for ``objective=KIND`` (layer, channel, neuron, guide, text) and its keys;
    anything else is taken as an expression already."""
    if kind not in OBJECTIVE_KINDS:
        return kind
    if kind == "text" and not words:
        raise DreamInputError("objective=text needs the words: words='red star'")
    return OBJECTIVE_KINDS[kind].format(layer=layer, unit=unit, words=words)


def start_image(
    path: str | Path | None, size: int, max_size: int | None, seed: int
) -> tuple[str, torch.Tensor]:
    """A name for the outputs and the start image ``(1, 3, H, W)`` in [0, 1]: the file (long
    side capped at ``max_size``) or grey noise of ``size`` × ``size``."""
    if path is None:
        return "noise", noise_image(size, size, seed)
    path = Path(path)
    if not path.is_file():
        raise DreamInputError(f"input image {path} does not exist; give input=FILE or input=null")
    return path.stem, load_image(path, max_size=max_size)[None]


@dataclass
class Stylization:
    """One or more looks of a trained stylizer, applied to dreams or to the start image."""

    stylizer: torch.nn.Module
    looks: list[StyleChoice]
    strength: float = 1.0
    preserve_color: bool = False

    @classmethod
    def load(cls, ckpt: str, style=None, mix=None, strength=1.0, preserve_color=False):
        loaded = load_stylizer(ckpt)
        looks = choose_styles(style, mix, loaded.style_names)
        if not looks:
            raise DreamInputError(
                f"stylize.ckpt={ckpt} needs a look: stylize.style=ID_OR_NAME (or all), or "
                f"stylize.mix={{ID: WEIGHT, ...}}; its styles: {', '.join(loaded.style_names)}"
            )
        return cls(loaded.stylizer, looks, strength, preserve_color)

    def apply(self, image: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        """``(look label, stylized image)`` for each look; ``image`` ``(1, 3, H, W)``."""
        device = image.device
        self.stylizer.to(device)
        for look in self.looks:
            with torch.inference_mode():
                styled = stylize(
                    self.stylizer,
                    image,
                    look.vector[None].to(device),
                    self.strength,
                    self.preserve_color,
                )
            yield look.label, styled


@dataclass
class DreamJob:
    """Everything about one run of the dream command but the model."""

    output: Path
    input: str | None = None
    size: int = 512
    max_size: int | None = 1024
    objective: str = "layer"
    layer: str | None = None
    unit: int = 0
    words: str | None = None
    guide: str | None = None
    layers: list[str] | str | None = None
    settings: DreamSettings = field(default_factory=DreamSettings)
    seed: int = 0
    save_octaves: bool = False
    zoom: dict | None = None
    video: dict = field(default_factory=lambda: {"octaves": 2, "steps": 5})
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    stylization: Stylization | None = None
    order: str = "dream_then_stylize"
    progress: bool = True


def run_dream(model: DreamModel, job: DreamJob, params: dict | None = None) -> list[Path]:
    """Dream as ``job`` says with ``model``; returns the files written (images, the video, the
    contact sheet and ``dream.json`` with ``params`` and the objective)."""
    if job.order not in ORDERS:
        raise DreamInputError(f"order={job.order!r}; choose one of {', '.join(ORDERS)}")
    device = next(model.buffers()).device
    guide = (
        start_image(job.guide, job.size, job.max_size, job.seed)[1].to(device)
        if job.guide
        else None
    )
    layer = job.layer or model.default_layer
    spec = objective_spec(job.objective, layer, job.unit, job.words)
    objective = parse_objective(spec, model, guide)
    writer = _Writer(job.output)
    described = {**(params or {}), "objective": spec}
    if job.input is not None and is_video(job.input):
        info = _video_input(job)
        name = f"{Path(job.input).stem}_dream.mp4"
        writer.file(name, lambda path: _write_dream_video(model, objective, job, info, path))
        described["video"] = {"fps": info.fps, "frames": info.frames, "audio": info.has_audio}
    else:
        _dream_stills(model, objective, job, writer)
    writer.file(
        "dream.json",
        lambda path: path.write_text(json.dumps(described, indent=2, default=str) + "\n"),
    )
    return writer.written


def _dream_stills(model: DreamModel, objective, job: DreamJob, writer: "_Writer") -> None:
    """The still dreams (one, or one per layer with a sheet), their stylized looks, the zoom."""
    name, start = start_image(job.input, job.size, job.max_size, job.seed)
    start = start.to(next(model.buffers()).device)
    layers = _overview(model, job.layers)
    stylize_first = job.stylization is not None and job.order == "stylize_then_dream"
    starts = (
        [(f"{name}_{label}", image) for label, image in job.stylization.apply(start)]
        if stylize_first
        else [(name, start)]
    )
    for prefix, image in starts:
        if stylize_first:
            writer.image(f"{prefix}.png", image)
        stills = []
        for still, dreamed in _dreams(model, image, objective, job, layers):
            stills.append((still, writer.image(f"{prefix}_{still}.png", dreamed), dreamed))
            if job.stylization is not None and not stylize_first and not still.startswith("octave"):
                for label, styled in job.stylization.apply(dreamed):
                    writer.image(f"{prefix}_{still}_{label}.png", styled)
        if layers:
            sheet = labelled_grid([(still, dreamed) for still, _, dreamed in stills], columns=3)
            writer.file(f"{prefix}_layers.png", sheet.save)
    if job.zoom and job.zoom.get("frames", 0) > 0:
        writer.file(job.zoom["file"], lambda path: _write_zoom(model, start, objective, job, path))


def _overview(model: DreamModel, layers: list[str] | str | None) -> list[str] | None:
    if layers is None:
        return None
    chosen = list(model.overview_layers) if layers == "all" else list(layers)
    model.check_layers(chosen)
    return chosen


def _dreams(model, image, objective, job: DreamJob, layers) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, image)``: one dream per layer, or the octaves (when asked) and the dream."""
    if layers:
        yield from dream_layers(model, image, layers, job.settings, job.seed, job.progress)
        return
    octaves = list(dream_octaves(model, image, objective, job.settings, job.seed, job.progress))
    if job.save_octaves:
        for index, octave in enumerate(octaves[:-1]):
            yield f"octave{index}", octave
    yield "dream", octaves[-1]


def _write_zoom(model, start, objective, job: DreamJob, path: Path) -> None:
    zoom = job.zoom
    settings = DreamSettings(
        **{**job.settings.__dict__, "octaves": zoom["octaves"], "steps": zoom["steps"]}
    )
    frames = zoom_frames(
        model,
        start,
        objective,
        settings,
        zoom["frames"],
        zoom["zoom"],
        zoom["degrees"],
        job.seed,
        job.progress,
    )
    write_video(frames, path, fps=zoom["fps"])


def _video_input(job: DreamJob) -> VideoInfo:
    """The probed video of ``job.input``, after refusing what a video dream does not do."""
    refused = {
        "layers": job.layers is not None,
        "save_octaves": job.save_octaves,
        "zoom.frames": bool(job.zoom and job.zoom.get("frames", 0) > 0),
        "stylize.ckpt": job.stylization is not None,
    }
    if any(refused.values()):
        keys = ", ".join(key for key, given in refused.items() if given)
        hint = (
            f"; to stylize the dream, run python -m miro.stylize input={Path(job.input).stem}"
            "_dream.mp4 after this"
            if job.stylization is not None
            else ""
        )
        raise DreamInputError(
            f"input={job.input} is a video: {keys} work on images only; leave them out{hint}"
        )
    return probe_video(job.input)


def _write_dream_video(model, objective, job: DreamJob, info: VideoInfo, path: Path) -> None:
    settings = replace(job.settings, octaves=job.video["octaves"], steps=job.video["steps"])
    frames = read_frames(info.path, max_size=job.max_size)
    dreams = dream_video(model, frames, objective, settings, job.temporal, job.seed)
    bar = tqdm(dreams, total=info.frames, unit="frame", desc="dream", disable=not job.progress)
    write_video(bar, path, fps=info.fps, audio_from=info)


class _Writer:
    """Writes files under ``folder`` and remembers them."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def image(self, name: str, image: torch.Tensor) -> Path:
        return self.file(name, lambda path: save_image(image[0], path))

    def file(self, name: str, write) -> Path:
        path = self.folder / name
        write(path)
        self.written.append(path)
        log.info("wrote %s", path)
        return path
