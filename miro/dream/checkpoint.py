"""Read a text-supervised encoder, and its text model, out of a Lightning checkpoint of
``python -m miro.train +experiment=instagram_text``.

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

Example::

    loaded = load_encoder("outputs/instagram_text/.../checkpoints/last.ckpt")
    model = loaded.dream_model()                       # layers inception3a … output
    objective = text(loaded.text_vector("star moon"))
"""

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from miro.dream.models import GoogLeNetDream, from_encoder
from miro.dream.text_space import text_vector
from miro.models.googlenet import GoogLeNetEncoder
from miro.models.weights import read_checkpoint

log = logging.getLogger(__name__)

TRAIN_COMMAND = "python -m miro.train +experiment=instagram_text"
PREFIX = "encoder."
LEGACY = {
    "class": "miro.models.googlenet.GoogLeNetEncoder",
    "to_text_space": "miro.losses.SigmoidCrossEntropy",
    "text_model": {"class": "miro.text.lda.TopicEmbedder", "run_dir_path": "text_model/model"},
}


class EncoderCheckpointError(ValueError):
    """A file that is not a readable text-supervised encoder checkpoint."""


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

    def dream_model(self) -> GoogLeNetDream:
        """The encoder to dream with (see ``miro.dream.models.from_encoder``)."""
        model = from_encoder(
            self.encoder, self.to_text_space, self.text_model, self.prepare_targets
        )
        model.text_model_error = self.text_model_error
        return model

    def text_vector(self, phrase: str) -> torch.Tensor:
        """``phrase`` → its vector ``(D,)`` in the text space (see ``text_vector``)."""
        if self.text_model is None:
            raise ValueError(f"cannot make a text vector: {self.text_model_error}")
        return text_vector(self.text_model, phrase, self.prepare_targets)


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
    state = {
        key.removeprefix(PREFIX): value
        for key, value in (checkpoint.get("state_dict") or {}).items()
        if key.startswith(PREFIX)
    }
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
            f"{path} holds a {meta.get('class')}; dreaming reads {LEGACY['class']} encoders"
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


def text_encoder(ckpt_path: str | Path, text_model_dir: str | Path | None = None) -> GoogLeNetDream:
    """The dream model of an encoder checkpoint (``load_encoder(...).dream_model()``): a
    ``_target_`` for configs, beside ``miro.dream.models.googlenet`` and ``vgg16``."""
    return load_encoder(ckpt_path, text_model_dir).dream_model()


def _training_loss(checkpoint: dict, class_path: str, path: Path) -> nn.Module:
    """The training loss (for its ``to_text_space``), with its weights if it has any."""
    try:
        loss = _import(class_path, path)()
    except TypeError as err:
        raise EncoderCheckpointError(
            f"{path}: cannot rebuild its loss {class_path} without arguments ({err})"
        ) from err
    state = {
        key.removeprefix("loss."): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith("loss.")
    }
    loss.load_state_dict(state, strict=False)  # e.g. a learned temperature; none for most
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
