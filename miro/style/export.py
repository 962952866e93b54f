"""Export a stylizer to TorchScript or ONNX: a file that runs without this package.

The exported model is ``stylize`` without tiling: it pads any H, W (each at least 8 px) to the
network's grid and crops back, and applies ``strength`` and ``preserve_color`` as they were when
exporting. Inputs and outputs, float32:

- ``image`` ``(B, 3, H, W)`` RGB in [0, 1]; batch, height and width are dynamic.
- ``style_weights`` ``(B, num_styles)``, only when no ``style``/``mix`` was baked in: one row
  per image, normalized inside the model (one-hot = a style; rows such as 0.7/0.3 mix styles).
  One file then serves every style and mix, which is what an app with a style picker wants;
  baking a look in gives a one-input model for a fixed filter.
- ``stylized`` ``(B, 3, H, W)`` in [0, 1].

A JSON file beside the model records the style names, the inputs, the baked settings and how
closely the exported model matched PyTorch at two sizes when it was written.

Example::

    export_stylizer("last.ckpt", "exported/", "onnx")                 # style weights as input
    export_stylizer("last.ckpt", "exported/", "torchscript", style=3)  # style 3 baked in
"""

import importlib.util
import json
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from miro.models.checkpoints import load_stylizer
from miro.models.stylizer import Stylizer
from miro.style.apply import check_strength, stylize
from miro.style.errors import SettingsError, StyleChoiceError, StylizeError
from miro.style.styles import StyleKey, choose_styles

ONNX_OPSET = 17
TRACE_SIZE = (64, 64)
CHECK_SIZES = ((1, 68, 52), (2, 50, 70))  # batch, height, width: not multiples of 4 either
TOLERANCE = 1e-3


class ExportableStylizer(nn.Module):
    """``stylize`` with the settings fixed, in the shape exporters trace.

    ``forward(image, style_weights=None)``: ``image`` ``(B, 3, H, W)`` in [0, 1];
    ``style_weights`` ``(B, num_styles)`` when no ``weights`` row was baked in.
    """

    def __init__(
        self,
        stylizer: Stylizer,
        weights: torch.Tensor | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
    ) -> None:
        super().__init__()
        self.stylizer = stylizer
        self.register_buffer("weights", weights, persistent=False)
        self.strength = strength
        self.preserve_color = preserve_color

    def forward(self, image: torch.Tensor, style_weights: torch.Tensor | None = None):
        if style_weights is None:
            style_weights = self.weights
        else:
            style_weights = style_weights / style_weights.sum(dim=1, keepdim=True)
        return stylize(self.stylizer, image, style_weights, self.strength, self.preserve_color)


def example_inputs(model: ExportableStylizer, batch: int, height: int, width: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=generator)
    if model.weights is not None:
        return (image,)
    weights = torch.rand(batch, model.stylizer.num_styles, generator=generator)
    return image, weights


def input_names(model: ExportableStylizer) -> list[str]:
    return ["image"] if model.weights is not None else ["image", "style_weights"]


@contextmanager
def quiet_tracing() -> Iterator[None]:
    """Both exporters trace, and torch 2.14 deprecates tracing: it warns about the shape
    arithmetic of the padding (traced as shape ops; checked at other sizes after export) and
    about instance norm in eval mode (it always uses the input's statistics, as we want)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def write_torchscript(model: ExportableStylizer, path: Path) -> Callable:
    """Trace (``torch.jit.script`` cannot compile the model's ``interpolate`` call) and save;
    returns a runner of the saved file for the check."""
    with quiet_tracing():
        traced = torch.jit.trace(model, example_inputs(model, 1, *TRACE_SIZE, 0), check_trace=False)
        torch.jit.save(traced, str(path))
        loaded = torch.jit.load(str(path))
    return lambda *inputs: loaded(*inputs)


def write_onnx(model: ExportableStylizer, path: Path) -> Callable | None:
    """Export with the TorchScript-based exporter (``dynamo=False``: the torch.export-based one
    needs onnxscript, which we do not depend on); returns an onnxruntime runner, or None when
    onnxruntime is not installed."""
    if importlib.util.find_spec("onnx") is None:
        raise SettingsError("export=onnx needs the onnx package: pip install onnx")
    names = input_names(model)
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "style_weights": {0: "batch"}}
    axes = {name: axes[name] for name in names} | {"stylized": axes["image"]}
    with quiet_tracing():
        torch.onnx.export(
            model,
            example_inputs(model, 1, *TRACE_SIZE, 0),
            str(path),
            dynamo=False,
            input_names=names,
            output_names=["stylized"],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
        )
    try:
        return onnx_runner(path)
    except ImportError:
        return None


def onnx_runner(path: Path) -> Callable[..., torch.Tensor]:
    """The exported model at ``path`` in an onnxruntime session on the CPU (onnxruntime's
    default threads), as a function of its inputs, CPU tensors in the model's input order."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [node.name for node in session.get_inputs()]

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        feed = {name: np.ascontiguousarray(x) for name, x in zip(names, inputs, strict=True)}
        return torch.from_numpy(session.run(None, feed)[0])

    return run


WRITERS = {"torchscript": (write_torchscript, "pt"), "onnx": (write_onnx, "onnx")}


def max_difference(model: ExportableStylizer, runner: Callable) -> float:
    """Largest |exported − PyTorch| over the ``CHECK_SIZES`` inputs."""
    worst = 0.0
    for seed, size in enumerate(CHECK_SIZES, start=1):
        inputs = example_inputs(model, *size, seed)
        with torch.inference_mode():
            worst = max(worst, float((runner(*inputs) - model(*inputs)).abs().max()))
    return worst


def export_stylizer(
    ckpt: str | Path,
    output: str | Path,
    format: str,
    style: StyleKey | None = None,
    mix: Mapping[StyleKey, float] | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
) -> Path:
    """Write ``<output>/stylizer[_<look>].{pt,onnx}`` and a ``.json`` beside it; returns the
    model's path. Raises ``StylizeError`` if the file disagrees with PyTorch by more than 1e-3.
    """
    if format not in WRITERS:
        raise SettingsError(f"export must be one of {', '.join(WRITERS)}, got {format!r}")
    loaded = load_stylizer(ckpt)
    choices = choose_styles(style, mix, loaded.style_names)
    if len(choices) > 1:
        raise StyleChoiceError(
            "export bakes in one style or mix; leave style out to export the style weights "
            "as an input instead of style=all"
        )
    strength = check_strength(strength)
    look = choices[0] if choices else None
    model = ExportableStylizer(
        loaded.stylizer, look.vector if look else None, strength, preserve_color
    ).eval()
    write, suffix = WRITERS[format]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / (f"stylizer_{look.label}.{suffix}" if look else f"stylizer.{suffix}")
    runner = write(model, path)
    difference = max_difference(model, runner) if runner is not None else None
    description = {
        "format": format,
        "model": path.name,
        "ckpt": str(loaded.path.resolve()),
        "inputs": {
            "image": "(batch, 3, height, width) float32 RGB in [0, 1]; height, width >= 8",
            **(
                {}
                if look
                else {"style_weights": f"(batch, {loaded.num_styles}) float32, one row per image"}
            ),
        },
        "outputs": {"stylized": "(batch, 3, height, width) float32 RGB in [0, 1]"},
        "style_names": loaded.style_names,
        "baked_look": {"label": look.label, "weights": look.weights} if look else None,
        "strength": strength,
        "preserve_color": preserve_color,
        "onnx_opset": ONNX_OPSET if format == "onnx" else None,
        "torch": torch.__version__,
        "max_abs_difference_to_pytorch": difference,
        "checked_sizes": [list(size) for size in CHECK_SIZES] if runner is not None else None,
    }
    path.with_suffix(".json").write_text(json.dumps(description, indent=2) + "\n")
    if difference is not None and difference > TOLERANCE:
        raise StylizeError(
            f"the exported {path} differs from PyTorch by {difference:.2g} (> {TOLERANCE}); "
            "do not use it, and report this with your torch version"
        )
    return path
