"""An HTML gallery of a demo's outputs: sections of images, each with what made them, and the
run's configuration and metrics. One self-contained page beside the images (relative links).

Example::

    write_gallery(
        Path("outputs/demo"),
        [Section("Every style", "Photos in each style.", ["stylized/*.png"])],
        run_dir=Path("outputs/demo/encoder"),
    )
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

# What every browser shows inline; miro.images.IMAGE_SUFFIXES is what miro can read.
BROWSER_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}
BROWSER_VIDEO_SUFFIXES = {".mp4", ".webm"}  # H.264 MP4 is what miro writes
PARAMETER_FILES = ("dream.json", "stylize.json", "query.json")

TEMPLATE = Path(__file__).with_name("gallery.html.j2")


@dataclass
class Section:
    """A titled group of images and videos: every file under the gallery's folder matching
    ``patterns`` (globs, relative to it), with the parameter files found beside them."""

    title: str
    text: str
    patterns: Sequence[str]
    images: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    parameters: list[tuple[str, str]] = field(default_factory=list)

    def collect(self, root: Path) -> "Section":
        files = sorted({path for pattern in self.patterns for path in root.glob(pattern)})
        relative = [(path.relative_to(root).as_posix(), path.suffix.lower()) for path in files]
        self.images = [name for name, suffix in relative if suffix in BROWSER_IMAGE_SUFFIXES]
        self.videos = [name for name, suffix in relative if suffix in BROWSER_VIDEO_SUFFIXES]
        folders = sorted({path.parent for path in files})
        self.parameters = [
            (str((folder / name).relative_to(root)), (folder / name).read_text())
            for folder in folders
            for name in PARAMETER_FILES
            if (folder / name).is_file()
        ]
        return self


def write_gallery(
    root: Path,
    sections: Sequence[Section],
    run_dir: Path | None = None,
    title: str = "miro",
) -> Path:
    """Write ``root/index.html`` showing ``sections``; with ``run_dir``, a training run's
    ``metrics.json`` and resolved ``.hydra/config.yaml`` too. Returns the page's path."""
    root = Path(root)
    output = root / "index.html"
    metrics, config, config_path = {}, None, None
    if run_dir is not None:
        run_dir = Path(run_dir)
        if (run_dir / "metrics.json").is_file():
            metrics = json.loads((run_dir / "metrics.json").read_text())
        config_file = run_dir / ".hydra" / "config.yaml"
        if config_file.is_file():
            config, config_path = config_file.read_text(), config_file
    page = (
        jinja2.Environment(autoescape=True)
        .from_string(TEMPLATE.read_text())
        .render(
            title=title,
            metrics=metrics,
            sections=[section.collect(root) for section in sections],
            config=config,
            config_path=config_path,
        )
    )
    output.write_text(page)
    return output
