"""The torch device a command runs on, from its ``device=`` setting, and the mixed precision a
GPU trainer uses.

Example::

    model.to(resolve_device("auto"))  # CUDA when there is one, else the CPU
    pl.Trainer(accelerator="gpu", precision=mixed_precision())  # bf16-mixed on Ampere and later
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


def mixed_precision(bf16_supported: bool | None = None) -> str:
    """Lightning's mixed precision for this machine's GPU: ``bf16-mixed`` where the GPU computes
    in bfloat16 natively (compute capability 8.0, Ampere, and later: float32's exponent range, so
    no loss scaling), ``16-mixed`` (float16 with a gradient scaler) otherwise.

    Asking initializes CUDA in the calling process, which fork-based strategies (``ddp_fork``,
    ``ddp_notebook``) refuse: with those, set ``trainer.precision`` by hand.

    Args:
        bf16_supported: whether the GPU computes in bfloat16; None asks CUDA's current device
            (no GPU: False). ``conf/trainer/gpu.yaml`` calls it as ``precision``'s ``_target_``,
            so the question is asked when the trainer is built, on the machine that trains.
    """
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported(including_emulation=False)
    return "bf16-mixed" if bf16_supported else "16-mixed"
