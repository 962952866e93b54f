"""The torch device a command runs on, from its ``device=`` setting.

Example::

    model.to(resolve_device("auto"))  # CUDA when there is one, else the CPU
"""

import torch


class DeviceError(ValueError):
    """A ``device=`` setting that cannot work on this machine."""


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise DeviceError(f"device must be auto, cpu or cuda, got {device!r}") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device=cuda but no CUDA GPU is visible; use device=cpu or auto")
    return resolved
