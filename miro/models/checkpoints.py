"""Read what training wrote: a text-supervised encoder (with its text model) or an N-style
stylizer, out of the Lightning checkpoints of ``python -m miro.train``. Every consumer (dreaming,
retrieval, evaluation, stylizing, fine-tuning) loads through here, onto the CPU, with
``weights_only=True``.

The contract with the training side (``TextSupervisedEncoder.on_save_checkpoint``)::

    checkpoint["encoder"] = {"format": 1, "class": "miro.models.googlenet.GoogLeNetEncoder",
                             "embed_dim": int, "transform_input": bool,
                             "to_text_space": "miro.losses.SigmoidCrossEntropy",
                             "text_model": {"class": "miro.text.lda.TopicEmbedder",
                                            "run_dir_path": "text_model/model",
                                            "cache_path": "/abs/.cache/miro/<key>/model"}}
    checkpoint["state_dict"]["encoder.net.<parameter>"] = tensor

Checkpoints written before that entry existed hold only the weights: ``embed_dim`` is then read
from ``encoder.net.fc.weight``, the text space is the sigmoid of ``SigmoidCrossEntropy`` (the
only loss then) and the text model a ``TopicEmbedder``. The run dir is the parent of the
checkpoint's ``checkpoints/`` folder.

And with ``StyleTransferModule.on_save_checkpoint``::

    checkpoint["stylizer"] = {"num_styles": int, "width": int, "num_residual": int,
                              "separable": bool, "style_names": [str, ...]}
    checkpoint["state_dict"]["stylizer.<parameter>"] = tensor

Example::

    loaded = load_encoder("outputs/instagram_text/.../checkpoints/last.ckpt")
    loaded.to_text_space(loaded.encoder(images))      # (B, D) in the text space
    load_stylizer("outputs/miro_style/.../checkpoints/last.ckpt").stylizer(images, styles)
"""

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from miro.models.googlenet import GoogLeNetEncoder
from miro.models.stylizer import ResidualBlock, SeparableConv2d, Stylizer

log = logging.getLogger(__name__)

TRAIN_COMMAND = "python -m miro.train +experiment=instagram_text"
STYLE_TRAIN_COMMAND = "python -m miro.train +experiment=miro_style"
PREFIX = "encoder."
STYLIZER_PREFIX = "stylizer."
LEGACY = {
    "class": "miro.models.googlenet.GoogLeNetEncoder",
    "to_text_space": "miro.losses.SigmoidCrossEntropy",
    "text_model": {"class": "miro.text.lda.TopicEmbedder", "run_dir_path": "text_model/model"},
}


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or not of the model asked for."""


class EncoderCheckpointError(CheckpointError):
    """A file that is not a readable text-supervised encoder checkpoint."""


class StylizerCheckpointError(CheckpointError):
    """A file that is not a readable stylizer checkpoint."""


def read_checkpoint(
    path: str | Path, what: str, train_command: str, error: type[CheckpointError]
) -> dict:
    """A Lightning checkpoint read onto the CPU with ``weights_only=True``; raises ``error``
    naming the file and how to make one (``train_command``) when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise error(
            f"{what} checkpoint {path} does not exist; train one with `{train_command}` "
            "and pass its checkpoints/last.ckpt as ckpt=PATH"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and weights-only errors all mean: not ours
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise error(
            f"could not read {path} as a PyTorch checkpoint ({type(err).__name__}: {reason})"
        ) from err
    return checkpoint if isinstance(checkpoint, dict) else {}


def model_state(checkpoint: dict, prefix: str) -> dict[str, torch.Tensor]:
    """The weights of the submodule saved under ``prefix`` (``"encoder."``), unprefixed."""
    return {
        key.removeprefix(prefix): value
        for key, value in (checkpoint.get("state_dict") or {}).items()
        if key.startswith(prefix)
    }


@dataclass
class LoadedEncoder:
    """An encoder in eval mode on the CPU, its map into the text space and its text model.

    Attributes:
        encoder: images ``(B, 3, H, W)`` in [0, 1] → raw outputs ``(B, embed_dim)``.
        to_text_space: raw outputs → the text space (the training loss's ``to_text_space``,
            e.g. the sigmoid of ``SigmoidCrossEntropy``).
        text_model: the fitted text model (``transform``, ``knows``, ``tokenizer``), or None
            when it was not found; ``text_model_error`` then says where it was looked for.
        prepare_targets: the text model's vectors → the text space (the loss's
            ``prepare_targets``), or None for losses without one.
    """

    encoder: GoogLeNetEncoder
    to_text_space: Callable[[torch.Tensor], torch.Tensor]
    text_model: object | None
    path: Path
    text_model_error: str | None = None
    prepare_targets: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def embed_dim(self) -> int:
        return self.encoder.net.fc.out_features


def load_encoder(path: str | Path, text_model_dir: str | Path | None = None) -> LoadedEncoder:
    """Load the encoder of checkpoint ``path`` (``weights_only=True``, onto the CPU).

    Args:
        text_model_dir: where the fitted text model was saved, when not in the run dir (the
            checkpoint's ``checkpoints/`` parent) ``text_model/model`` or the recorded cache.

    Raises ``EncoderCheckpointError`` naming the file and the fix when it is missing, unreadable
    or not an encoder checkpoint.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path, "encoder", TRAIN_COMMAND, EncoderCheckpointError)
    state = model_state(checkpoint, PREFIX)
    if "net.fc.weight" not in state:
        raise EncoderCheckpointError(
            f"{path} is not a text-supervised encoder checkpoint: it has no "
            f"'{PREFIX}net.fc.weight'. Encoder checkpoints are written by `{TRAIN_COMMAND}`"
        )
    meta = checkpoint.get("encoder")
    if meta is None:
        log.warning(
            "%s has no 'encoder' entry (an older checkpoint): embed_dim from its weights, "
            "assuming an encoder trained from scratch (model.pretrained=null)",
            path,
        )
        meta = {**LEGACY, "embed_dim": state["net.fc.weight"].shape[0], "transform_input": False}
    if meta.get("class") != LEGACY["class"]:
        raise EncoderCheckpointError(
            f"{path} holds a {meta.get('class')}; miro reads {LEGACY['class']} encoders"
        )
    encoder = GoogLeNetEncoder(int(meta["embed_dim"]))
    encoder.net.transform_input = bool(meta.get("transform_input", False))
    try:
        encoder.load_state_dict(state)
    except RuntimeError as err:
        raise EncoderCheckpointError(
            f"the weights in {path} do not fit a GoogLeNetEncoder(embed_dim="
            f"{meta['embed_dim']}): {err}"
        ) from err
    loss = _training_loss(checkpoint, meta.get("to_text_space") or LEGACY["to_text_space"], path)
    text_model, error = _load_text_model(path, meta.get("text_model"), text_model_dir)
    prepare = getattr(loss, "prepare_targets", None)
    return LoadedEncoder(encoder.eval(), loss.to_text_space, text_model, path, error, prepare)


def _training_loss(checkpoint: dict, class_path: str, path: Path) -> nn.Module:
    """The training loss (for its ``to_text_space``), with its weights if it has any."""
    try:
        loss = _import(class_path, path)()
    except TypeError as err:
        raise EncoderCheckpointError(
            f"{path}: cannot rebuild its loss {class_path} without arguments ({err})"
        ) from err
    loss.load_state_dict(
        model_state(checkpoint, "loss."), strict=False
    )  # e.g. a learned temperature; none for most
    return loss.eval()


def _import(class_path: str, source: Path) -> type:
    module_name, _, name = class_path.rpartition(".")
    if not module_name.startswith("miro."):  # a checkpoint names code to run: only ours
        raise EncoderCheckpointError(f"{source} names {class_path}, outside the miro package")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise EncoderCheckpointError(
            f"{source} needs {class_path}, which this version of miro does not have ({err})"
        ) from err


def _load_text_model(
    path: Path, meta: dict | None, directory: str | Path | None
) -> tuple[object | None, str | None]:
    """The text model and None, or None and why it is missing (an encoder without its text
    model still dreams on layers; only text objectives need it)."""
    meta = meta or LEGACY["text_model"]
    run_dir = path.resolve().parent.parent
    candidates = [Path(directory)] if directory is not None else []
    candidates.append(run_dir / meta.get("run_dir_path", "text_model/model"))
    if meta.get("cache_path"):
        candidates.append(Path(meta["cache_path"]))
    for candidate in candidates:
        if candidate.is_dir():
            return _import(meta["class"], path).load(candidate), None
    looked = ", ".join(str(c) for c in candidates)
    return None, (
        f"the text model of {path} was not found (looked in {looked}); pass its folder "
        "(the run's text_model/model) as text_model_dir"
    )


def stylizer_config(stylizer: Stylizer, style_names: Sequence[str]) -> dict:
    """What rebuilds ``stylizer``: the ``checkpoint["stylizer"]`` contract, plain types only."""
    return {
        "num_styles": int(stylizer.num_styles),
        "width": int(stylizer.blocks[0].conv.out_channels),
        "num_residual": sum(isinstance(block, ResidualBlock) for block in stylizer.blocks),
        "separable": any(isinstance(module, SeparableConv2d) for module in stylizer.modules()),
        "style_names": [str(name) for name in style_names],
    }


@dataclass
class LoadedStylizer:
    """A stylizer in eval mode on the CPU, with its style names and where it came from."""

    stylizer: Stylizer
    style_names: list[str]
    path: Path
    width: int
    num_residual: int

    @property
    def num_styles(self) -> int:
        return self.stylizer.num_styles


def load_stylizer(path: str | Path) -> LoadedStylizer:
    """Load the stylizer of checkpoint ``path`` (``weights_only=True``, onto the CPU).

    Raises ``StylizerCheckpointError`` naming the file and the fix when it is missing,
    unreadable, not a stylizer checkpoint, or its weights do not fit its recorded architecture.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path, "stylizer", STYLE_TRAIN_COMMAND, StylizerCheckpointError)
    meta = checkpoint.get("stylizer")
    if not isinstance(meta, dict) or "num_styles" not in meta:
        raise StylizerCheckpointError(
            f"{path} is not a stylizer checkpoint: it has no 'stylizer' entry with num_styles. "
            f"Stylizer checkpoints are written by `{STYLE_TRAIN_COMMAND}`"
        )
    num_styles = int(meta["num_styles"])
    width, num_residual = int(meta.get("width", 32)), int(meta.get("num_residual", 5))
    separable = bool(meta.get("separable", False))  # absent before the thin stylizer
    names = [str(name) for name in meta.get("style_names") or range(num_styles)]
    if len(names) != num_styles:
        raise StylizerCheckpointError(
            f"{path} lists {len(names)} style_names for num_styles={num_styles}; "
            "the checkpoint is inconsistent, re-save it from training"
        )
    state = model_state(checkpoint, STYLIZER_PREFIX)
    if not state:
        raise StylizerCheckpointError(
            f"{path} has a 'stylizer' entry but no '{STYLIZER_PREFIX}*' weights"
        )
    stylizer = Stylizer(num_styles, width=width, num_residual=num_residual, separable=separable)
    try:
        stylizer.load_state_dict(state)
    except RuntimeError as err:
        raise StylizerCheckpointError(
            f"the weights in {path} do not fit num_styles={num_styles}, width={width}, "
            f"num_residual={num_residual}, separable={separable}: {err}"
        ) from err
    return LoadedStylizer(stylizer.eval(), names, path, width, num_residual)
