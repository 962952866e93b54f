"""The torch device a command runs on, from its ``device=`` setting, the mixed precision a GPU
trainer uses, and the type a frozen network runs in (``precision=auto|float32|bfloat16``).

Example::

    model.to(resolve_device("auto"))  # CUDA when there is one, else the CPU
    pl.Trainer(accelerator="gpu", precision=mixed_precision())  # bf16-mixed on Ampere and later
    compute_dtype("auto", device)     # bfloat16 where the device computes it natively
"""

import torch

PRECISIONS = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16}


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
        bf16_supported = native_bfloat16(torch.device("cuda"))
    return "bf16-mixed" if bf16_supported else "16-mixed"


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: CUDA GPUs from Ampere on, CPUs with
    AVX512-BF16 or AMX (elsewhere it is emulated, and slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and any(
        getattr(torch.cpu, check, lambda: False)()
        for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The type for ``precision`` (a key of ``PRECISIONS``) on ``device``: ``auto`` is
    bfloat16 where ``native_bfloat16``, else float32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; choose one of {sorted(PRECISIONS)}")
    if PRECISIONS[precision] is not None:
        return PRECISIONS[precision]
    return torch.bfloat16 if native_bfloat16(device) else torch.float32
