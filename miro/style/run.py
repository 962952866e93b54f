"""Stylize an image file or a folder of images into an output folder.

Images are read one at a time and run in batches of consecutive images of the same size (up to
``batch_size``): instance norm works per image, so a batch gives the per-image results, while
padding images of different sizes to one size would change their statistics. Folders of camera
or Instagram images often share a size, so the runs are long where batching pays: on a GPU. On
the CPU one image at a time is faster (256 px, 2 cores: 80 ms an image alone, ~115 ms in a batch
of 4), so ``batch_size="auto"`` is 1 there and 8 on CUDA. Memory stays at one batch.

A video file as ``input`` (``.mp4``, ``.mov``, ...) is stylized by ``miro.style.video`` into
``<stem>_stylized.mp4`` (one look) or ``<stem>_<label>.mp4`` (several), with the source's frame
count, rate and sound. A folder is stylized image by image; videos inside it are left alone
(each is a long job of its own: give it as ``input``).

Example::

    report = stylize_path("last.ckpt", "photos/", "styled/", style="constellation")
    report = stylize_path("last.ckpt", "clip.mp4", "styled/", style=3)
    print(report.summary())
"""

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from miro.images import IMAGE_SUFFIXES, UnreadableImageError, find_images, load_image, save_image
from miro.models.checkpoints import load_stylizer
from miro.style.apply import check_strength
from miro.style.errors import InputError, SettingsError, StyleChoiceError
from miro.style.runtime import RUNTIMES, Painter
from miro.style.styles import StyleChoice, StyleKey, choose_styles, describe_styles
from miro.style.tiling import Tiling
from miro.style.video import VideoReport, stylize_video
from miro.video.io import is_video
from miro.video.temporal import TemporalSettings

PARAMETERS_FILE = "stylize.json"


@dataclass
class StylizeReport:
    """What a run wrote (relative to ``output_dir``) and which inputs it skipped, and why."""

    output_dir: Path
    parameters_file: Path
    written: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    video: VideoReport | None = None

    def summary(self) -> str:
        what = "image(s)"
        if self.video is not None:
            video = self.video
            what = (
                f"video(s) of {video.frames} frames at {video.source.fps:g} fps "
                f"({'with' if video.source.has_audio else 'no'} sound; "
                f"{video.frames_per_second:.1f} frames/s)"
            )
        lines = [
            f"outputs: {self.output_dir}",
            f"wrote {len(self.written)} {what}; parameters in {self.parameters_file}",
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable files:")
            lines += [f"  {name}: {reason}" for name, reason in self.skipped.items()]
        return "\n".join(lines)


def find_inputs(path: Path, exclude: Path | None = None) -> list[Path]:
    """``[path]`` for a file (whatever its suffix; a non-image is reported as unreadable);
    for a folder, its images by suffix, recursively, sorted, leaving out anything under
    ``exclude`` (earlier outputs written inside the input folder)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(
            f"input {path} does not exist; give an image file or a folder of images as input=PATH"
        )
    files = find_images(path)
    if exclude is not None:
        exclude = exclude.resolve()
        files = [file for file in files if not file.resolve().is_relative_to(exclude)]
    if not files:
        message = f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {path}"
        videos = sorted(file.name for file in path.rglob("*") if is_video(file))
        if videos:
            message += f"; its videos ({', '.join(videos)}) go one at a time: input=FILE"
        raise InputError(message)
    return files


def output_names(files: list[Path], root: Path) -> dict[Path, Path]:
    """Each input's output path stem, relative to the output folder; the suffix joins the stem
    only where two inputs in one folder share a stem (``a.jpg``, ``a.png``)."""
    relative = {file: file.relative_to(root) for file in files}
    stems = Counter((path.parent, path.stem) for path in relative.values())
    return {
        file: path.parent / (path.stem if stems[path.parent, path.stem] == 1 else path.name)
        for file, path in relative.items()
    }


def readable_images(
    files: Iterable[Path], root: Path, max_size: int | None, skipped: dict[str, str], progress
) -> Iterator[tuple[Path, torch.Tensor]]:
    """``(file, image)`` for the files that decode; the others go into ``skipped``."""
    for file in files:
        try:
            yield file, load_image(file, max_size=max_size)
        except UnreadableImageError as err:
            skipped[str(file.relative_to(root))] = str(err)
            progress.update(1)


def same_size_batches(
    items: Iterable[tuple[Path, torch.Tensor]], batch_size: int
) -> Iterator[list[tuple[Path, torch.Tensor]]]:
    """Consecutive items whose images have one size, at most ``batch_size`` at a time."""
    batch: list[tuple[Path, torch.Tensor]] = []
    for item in items:
        if batch and (len(batch) == batch_size or batch[0][1].shape != item[1].shape):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def stylize_path(
    ckpt: str | Path,
    input: str | Path,
    output: str | Path,
    style: StyleKey | None = None,
    mix: Mapping[StyleKey, float] | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    max_size: int | None = 1024,
    batch_size: int | str = "auto",
    device: str = "auto",
    tiling: Tiling | None = None,
    extension: str = "png",
    progress: bool = True,
    runtime: str = "torch",
    onnx_cache: str | Path = ".cache/miro/onnx",
    temporal: TemporalSettings | None = None,
) -> StylizeReport:
    """Stylize the image ``input`` (or every image under the folder ``input``, or the video
    file ``input``) into ``output``.

    Writes ``<output>/<relative stem>_<style label>.<extension>`` for each image and look
    (``style="all"``: every style), or ``<output>/<stem>_stylized.mp4`` for a video (with
    several looks ``<stem>_<label>.mp4``, blended along the motion as ``temporal`` says), and
    ``<output>/stylize.json`` with the resolved parameters, the files written and the files
    skipped. Unreadable images are skipped, never fatal; if none could be read, ``InputError``
    is raised after the report is written. ``runtime``: ``torch``, or ``onnx`` (onnxruntime on
    the CPU, its model exported into ``onnx_cache``; see ``miro.style.runtime``).
    """
    if runtime not in RUNTIMES:
        raise SettingsError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    loaded = load_stylizer(ckpt)
    choices = choose_styles(style, mix, loaded.style_names)
    if not choices:
        raise StyleChoiceError(
            f"choose a style: style=ID or style=NAME, style=all, or mix={{ID: WEIGHT, ...}}; "
            f"{loaded.path} has {loaded.num_styles} styles: {describe_styles(loaded.style_names)}"
        )
    strength = check_strength(strength)
    if max_size is not None and max_size < 8:
        raise SettingsError(f"max_size must be at least 8 (or null for no cap), got {max_size}")
    input, output = Path(input), Path(output)
    video = input.is_file() and is_video(input)
    files = [input] if video else find_inputs(input, exclude=output)
    tiling = tiling or Tiling()
    temporal = temporal or TemporalSettings()
    painter = RUNTIMES[runtime](loaded, device, strength, preserve_color, tiling, onnx_cache)
    if batch_size == "auto":
        batch_size = 8 if painter.device.type == "cuda" else 1
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SettingsError(f"batch_size must be auto or at least 1, got {batch_size!r}")
    output.mkdir(parents=True, exist_ok=True)
    report = StylizeReport(output, output / PARAMETERS_FILE)
    parameters = {
        "ckpt": str(loaded.path.resolve()),
        "input": str(input.resolve()),
        "style_names": loaded.style_names,
        "looks": {choice.label: choice.weights for choice in choices},
        "strength": strength,
        "preserve_color": preserve_color,
        "max_size": max_size,
        "batch_size": batch_size,
        "device": str(painter.device),
        "tiling": asdict(tiling),
        "runtime": runtime,
        "model": str(painter.model.resolve()),
    }
    if video:
        labels = ["stylized"] if len(choices) == 1 else [choice.label for choice in choices]
        outputs = {
            output / f"{input.stem}_{label}.mp4": choice.vector
            for label, choice in zip(labels, choices, strict=True)
        }
        report.video = stylize_video(
            painter, input, outputs, temporal, batch_size, max_size, progress
        )
        report.written = [path.name for path in outputs]
        parameters["video"] = video_parameters(report.video, temporal)
    else:
        root = input if input.is_dir() else input.parent
        stylize_images(
            painter, files, root, output, choices, max_size, batch_size, extension, progress, report
        )
    parameters |= {"written": report.written, "skipped": report.skipped}
    report.parameters_file.write_text(json.dumps(parameters, indent=2) + "\n")
    if not report.written:
        raise InputError(
            f"none of the {len(files)} input files could be read as an image: "
            + "; ".join(f"{name} ({reason})" for name, reason in report.skipped.items())
        )
    return report


def stylize_images(
    painter: Painter,
    files: list[Path],
    root: Path,
    output: Path,
    choices: list[StyleChoice],
    max_size: int | None,
    batch_size: int,
    extension: str,
    progress: bool,
    report: StylizeReport,
) -> None:
    """Every look of every readable image in ``files`` (below ``root``) into ``output``;
    ``report`` gets the files written and those skipped."""
    names = output_names(files, root)
    bar = tqdm(total=len(files), unit="image", disable=not progress, desc="stylize")
    with torch.inference_mode(), bar:
        images = readable_images(files, root, max_size, report.skipped, bar)
        for batch in same_size_batches(images, batch_size):
            content = torch.stack([image for _, image in batch]).to(painter.device)
            for choice in choices:
                stylized = painter.paint(content, choice.vector)
                for (file, _), image in zip(batch, stylized, strict=True):
                    target = names[file].with_name(f"{names[file].name}_{choice.label}.{extension}")
                    save_image(image, output / target)
                    report.written.append(str(target))
            bar.update(len(batch))


def video_parameters(video: VideoReport, temporal: TemporalSettings) -> dict:
    """What ``stylize.json`` records of a video run."""
    return {
        "fps": video.source.fps,
        "frames": video.frames,
        "source_size": list(video.source.size),
        "audio": video.source.audio_codec,
        "temporal": asdict(temporal),
        "seconds": round(video.seconds, 3),
        "frames_per_second": round(video.frames_per_second, 2),
    }
