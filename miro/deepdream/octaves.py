"""The DeepDream loop: gradient ascent on the image, octave by octave.

Mordvintsev, Olah and Tyka, "Inceptionism: Going Deeper into Neural Networks" (Google, 2015)
and its notebook: the image is dreamed first at its smallest octave (``octave_scale``× smaller
each), and the detail the dream added there is upscaled onto the next octave's base; each
step rolls the image by a random jitter of up to 32 px, climbs the objective's gradient divided
by its mean absolute value, rolls back and keeps values in range. The defaults are the
notebook's: 4 octaves, scale 1.4, 10 steps per octave, step 1.5 on its 0–255 scale, which is
``1.5 / 255`` on our [0, 1] images: each step moves a pixel by 1.5/255 on average.

Example::

    model = googlenet()
    image = dream(model, photo, layer("inception4c"), seed=0)        # (1, 3, H, W) in [0, 1]
    for octave_image in dream_octaves(model, photo):                  # each octave as it ends
        ...
"""

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from miro.deepdream.models import DreamModel
from miro.deepdream.objectives import Objective, layer
from miro.deepdream.progress import DreamProgress, ProgressBar
from miro.deepdream.tiling import needs_tiles, objective_gradient
from miro.devices import PRECISIONS, compute_dtype

log = logging.getLogger(__name__)

Progress = Callable[[DreamProgress], None]
MIN_OCTAVE_SIDE = 16


@dataclass(frozen=True)
class DreamSettings:
    """How to dream (defaults: Google's notebook).

    Args:
        octaves: image scales dreamed, smallest first; 1 dreams at the image's size only.
        octave_scale: size ratio between neighbouring octaves (> 1).
        steps: gradient steps per octave.
        step_size: mean change of a pixel per step, on the [0, 1] scale (1.5 / 255).
        jitter: the image is rolled by a random shift in ``[-jitter, jitter]`` pixels per axis
            before each step and rolled back after (0: no jitter).
        tile_size: gradients of images larger than this (either side) are computed on tiles of
            at most this side, with a random tile grid each step; None: never tiled.
        channels_last: run the network in channels-last memory format (faster on CPUs).
        precision: ``"float32"``, ``"bfloat16"`` (the network under autocast; the image, the
            objective and the step stay float32) or ``"auto"``: bfloat16 where the device
            computes it natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs that support it),
            float32 elsewhere. float32 by default: bfloat16 is faster but dreams another
            picture (3 octaves of 8 steps at 160 px, same seed: 22 dB PSNR against the float32
            dream on GoogLeNet, 27.5 dB on VGG-16, where float32 at another thread count is
            39 and 44 dB from it; ``benchmarks/dream_parity.py``).
    """

    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10
    step_size: float = 1.5 / 255
    jitter: int = 32
    tile_size: int | None = 512
    channels_last: bool = True
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}; choose one of {sorted(PRECISIONS)}")
        if self.octaves < 1 or self.steps < 0 or self.jitter < 0:
            raise ValueError(
                f"octaves={self.octaves} must be ≥ 1, steps={self.steps} and "
                f"jitter={self.jitter} ≥ 0"
            )
        if self.octave_scale <= 1:
            raise ValueError(f"octave_scale={self.octave_scale} must be > 1, e.g. 1.4")
        if self.tile_size is not None and self.tile_size < 32:
            raise ValueError(f"tile_size={self.tile_size} must be at least 32 px, e.g. 512")


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """``(height, width)`` of each octave, smallest first; the last is the image's own size.

    Raises ``ValueError`` when the smallest octave would be under 16 px a side.
    """
    sizes = [(round(height / scale**k), round(width / scale**k)) for k in reversed(range(octaves))]
    if min(sizes[0]) < MIN_OCTAVE_SIDE:
        raise ValueError(
            f"the smallest of {octaves} octaves of a {width}x{height} image at scale {scale} "
            f"would be {sizes[0][1]}x{sizes[0][0]} px (under {MIN_OCTAVE_SIDE}); use fewer "
            "octaves, a smaller octave_scale or a larger image"
        )
    return sizes


def as_generator(seed: int | torch.Generator) -> torch.Generator:
    """A CPU generator: ``seed`` itself, or a fresh one seeded with it."""
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def noise_image(
    height: int, width: int, seed: int | torch.Generator = 0, batch: int = 1
) -> torch.Tensor:
    """A start image ``(batch, 3, height, width)``: grey 0.5 plus uniform noise of ±0.1 (Google's
    TensorFlow notebook starts from grey too; the noise gives the first steps something to
    amplify)."""
    noise = torch.rand(batch, 3, height, width, generator=as_generator(seed))
    return 0.5 + 0.2 * (noise - 0.5)


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize; antialiased when shrinking."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrinking = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bilinear", antialias=shrinking)


def dream_step(
    model: DreamModel,
    objective: Objective,
    images: torch.Tensor,
    settings: DreamSettings,
    generator: torch.Generator,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """One gradient-ascent step on ``images`` ``(B, 3, H, W)`` in [0, 1], in place; returns it.

    Roll by the jitter (and, when tiled, a random tile-grid offset), take the gradient, divide
    each image's gradient by its mean absolute value, step, roll back, clamp to [0, 1].
    ``dtype``: the network's compute type; None resolves ``settings.precision``.
    """
    if dtype is None:
        dtype = compute_dtype(settings.precision, images.device)
    height, width = images.shape[-2:]
    tiled = needs_tiles(height, width, settings.tile_size)
    shift = torch.randint(-settings.jitter, settings.jitter + 1, (2,), generator=generator)
    if tiled:  # move the tile grid too, so tile borders fall elsewhere every step
        shift += torch.randint(0, settings.tile_size, (2,), generator=generator)
    dy, dx = shift.tolist()  # a CPU generator: no device sync
    rolled = images.roll((dy, dx), dims=(2, 3))
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    grad = objective_gradient(model, objective, rolled, settings.tile_size, memory_format, dtype)
    scale = grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min_(1e-30)  # on the device
    images.addcdiv_(grad.roll((-dy, -dx), dims=(2, 3)), scale, value=settings.step_size)
    return images.clamp_(0, 1)


def dream_octaves(
    model: DreamModel,
    images: torch.Tensor,
    objective: Objective | None = None,
    settings: DreamSettings | None = None,
    seed: int | torch.Generator = 0,
    progress: Progress | bool | None = None,
) -> Iterator[torch.Tensor]:
    """Dream ``images`` ``(B, 3, H, W)`` in [0, 1] and yield the image after each octave,
    smallest first (each at its octave's size); the last is the full-size dream.

    Args:
        model: the network (its device is where the dream runs).
        objective: what to raise; default ``layer(model.default_layer)``.
        settings: octaves, steps, jitter, step size, tiling; None: ``DreamSettings()``.
        seed: an int or a ``torch.Generator`` (CPU) for the jitter; same seed, same dream.
        progress: called with a ``DreamProgress`` after every step; True shows a tqdm bar.
    """
    objective = layer(model.default_layer) if objective is None else objective
    settings = DreamSettings() if settings is None else settings
    model.check_layers(objective.layers)
    generator = as_generator(seed)
    callback = ProgressBar() if progress is True else progress or None
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    device = model.mean.device
    dtype = compute_dtype(settings.precision, device)
    base = images.detach().to(device=device, dtype=torch.float32)
    sizes = octave_sizes(*base.shape[-2:], settings.octaves, settings.octave_scale)
    if needs_tiles(*sizes[-1], settings.tile_size):
        log.info("dreaming %dx%d in tiles of %d px", sizes[-1][1], sizes[-1][0], settings.tile_size)
    detail = torch.zeros_like(resize(base, sizes[0]))
    for octave, size in enumerate(sizes):
        octave_base = resize(base, size)
        image = (octave_base + resize(detail, size)).clamp_(0, 1)
        for step in range(settings.steps):
            dream_step(model, objective, image, settings, generator, dtype)
            if callback is not None:
                callback(DreamProgress(octave, len(sizes), step + 1, settings.steps, size))
        detail = image - octave_base
        yield image


def dream(
    model: DreamModel,
    images: torch.Tensor,
    objective: Objective | None = None,
    settings: DreamSettings | None = None,
    seed: int | torch.Generator = 0,
    progress: Progress | bool | None = None,
) -> torch.Tensor:
    """The dreamed ``images`` ``(B, 3, H, W)`` in [0, 1]; arguments as ``dream_octaves``."""
    octaves = dream_octaves(model, images, objective, settings, seed, progress)
    return deque(octaves, maxlen=1)[0]  # only the last octave is kept


def dream_layers(
    model: DreamModel,
    images: torch.Tensor,
    layers: Sequence[str] | None = None,
    settings: DreamSettings | None = None,
    seed: int = 0,
    progress: Progress | bool | None = None,
) -> Iterator[tuple[str, torch.Tensor]]:
    """``(layer, dream)`` for each of ``layers`` (default: every layer of the model, shallow to
    deep), each dreamed from ``images`` with ``layer(name)`` and the same seed, so the dreams
    differ only by layer."""
    layers = model.layer_names if layers is None else list(layers)
    model.check_layers(layers)
    for name in layers:
        yield name, dream(model, images, layer(name), settings, seed, progress)
