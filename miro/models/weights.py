"""One resolver for pretrained weights: torchvision's weights API (cached under ``TORCH_HOME``)
or a local state-dict file. Offline, a missing file fails with the name and folder to put it in.
"""

from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import WeightsEnum, get_weight

# The input convention of torchvision's ImageNet weights: (x - mean) / std on [0, 1] RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are neither in the cache nor downloadable, nor at the given path."""


def hub_checkpoint_path(weights: WeightsEnum) -> Path:
    """Where torchvision caches ``weights``: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def load_pretrained_state_dict(
    weights: str | None = None, path: str | Path | None = None
) -> dict[str, torch.Tensor]:
    """State dict from a local file ``path`` or from torchvision ``weights``.

    Args:
        weights: a torchvision weights name, e.g. ``"GoogLeNet_Weights.IMAGENET1K_V1"``; read
            from the ``TORCH_HOME`` cache, downloaded there when the network allows.
        path: a ``.pth`` state dict; takes precedence over ``weights``.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise WeightsNotFoundError(f"weights file {path} does not exist; check the path")
        return torch.load(path, map_location="cpu", weights_only=True)
    if weights is None:
        raise ValueError("give a torchvision weights name or a local weights path")
    enum = get_weight(weights)
    cached = hub_checkpoint_path(enum)
    try:
        return enum.get_state_dict(progress=True, map_location="cpu", weights_only=True)
    except OSError as err:  # URLError and socket errors: offline and not cached
        raise WeightsNotFoundError(
            f"could not download {weights} from {enum.url} ({err}). Offline, put the file "
            f"{cached.name} into {cached.parent} (set TORCH_HOME to move that folder), or give "
            "a local state dict with model.weights_path=FILE"
        ) from err
