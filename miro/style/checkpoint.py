"""Read a trained ``Stylizer`` out of a Lightning checkpoint.

The contract with the training side (``miro/lit/style_transfer.py``)::

    checkpoint["stylizer"] = {"num_styles": int, "width": int, "num_residual": int,
                              "style_names": [str, ...]}
    checkpoint["state_dict"]["stylizer.<parameter>"] = tensor

Example::

    loaded = load_stylizer("outputs/train/.../checkpoints/last.ckpt")
    loaded.stylizer(images, torch.tensor([3]))
"""

from dataclasses import dataclass
from pathlib import Path

from miro.models.stylizer import Stylizer
from miro.models.weights import read_checkpoint
from miro.style.errors import CheckpointError

TRAIN_COMMAND = "python -m miro.train +experiment=miro_style"
PREFIX = "stylizer."


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

    Raises ``CheckpointError`` naming the file and the fix when it is missing, unreadable, not
    a stylizer checkpoint, or its weights do not fit its recorded architecture.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path, "stylizer", TRAIN_COMMAND, CheckpointError)
    meta = checkpoint.get("stylizer")
    if not isinstance(meta, dict) or "num_styles" not in meta:
        raise CheckpointError(
            f"{path} is not a stylizer checkpoint: it has no 'stylizer' entry with num_styles. "
            f"Stylizer checkpoints are written by `{TRAIN_COMMAND}`"
        )
    num_styles = int(meta["num_styles"])
    width, num_residual = int(meta.get("width", 32)), int(meta.get("num_residual", 5))
    names = [str(name) for name in meta.get("style_names") or range(num_styles)]
    if len(names) != num_styles:
        raise CheckpointError(
            f"{path} lists {len(names)} style_names for num_styles={num_styles}; "
            "the checkpoint is inconsistent, re-save it from training"
        )
    state = {
        key.removeprefix(PREFIX): value
        for key, value in (checkpoint.get("state_dict") or {}).items()
        if key.startswith(PREFIX)
    }
    if not state:
        raise CheckpointError(f"{path} has a 'stylizer' entry but no '{PREFIX}*' weights")
    stylizer = Stylizer(num_styles, width=width, num_residual=num_residual)
    try:
        stylizer.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"the weights in {path} do not fit num_styles={num_styles}, width={width}, "
            f"num_residual={num_residual}: {err}"
        ) from err
    return LoadedStylizer(stylizer.eval(), names, path, width, num_residual)
