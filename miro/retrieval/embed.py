"""Images → unit vectors in an encoder's text space, in batches: what a retrieval index holds.

An image is read safely (``miro.images.read_image``: an unreadable file is skipped and counted,
never the end of a run), resized and center-cropped as training evaluates images
(``InstagramDataModule``'s eval transform), encoded, mapped into the text space by the training
loss's ``to_text_space`` and L2-normalized, so an inner product of two vectors is their cosine.

Example::

    loaded = load_encoder("outputs/instagram_text/.../checkpoints/last.ckpt")
    embedded = embed_images(loaded.encoder, loaded.to_text_space, paths, image_size=224)
    embedded.vectors   # (M, D) float32 unit rows, M = the readable images
    embedded.rows      # each vector's position in ``paths``; ``embedded.skipped`` the others
"""

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from miro.images import UnreadableImageError, eval_transform, read_image
from miro.retrieval.errors import RetrievalError

log = logging.getLogger(__name__)

DEFAULT_IMAGE_SIZE = 224


def training_image_size(ckpt: str | Path) -> int | None:
    """``data.image_size`` of the run that wrote ``ckpt`` (its ``.hydra/config.yaml``), if any."""
    config = Path(ckpt).resolve().parent.parent / ".hydra" / "config.yaml"
    try:
        return int(OmegaConf.select(OmegaConf.load(config), "data.image_size"))
    except Exception:  # no run config, or not a training run's: the caller falls back
        return None


def resolve_image_size(image_size: int | str, ckpt: str | Path) -> int:
    """``auto``: the training run's crop size, else 224; an int as it is (at least 32)."""
    if image_size == "auto":
        found = training_image_size(ckpt)
        if found is None:
            log.info(
                "no .hydra/config.yaml beside %s: images at %d px (set image_size=N to change)",
                ckpt,
                DEFAULT_IMAGE_SIZE,
            )
        return found or DEFAULT_IMAGE_SIZE
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 32:
        raise RetrievalError(f"image_size must be auto or at least 32, got {image_size!r}")
    return image_size


def weights_hash(module: nn.Module) -> str:
    """SHA-256 of ``module``'s state dict (names, dtypes, shapes, bytes): who made an index."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_query_image(path: str | Path, image_size: int) -> torch.Tensor:
    """One image as the index saw its images: ``(3, S, S)`` float in [0, 1]."""
    try:
        return eval_transform(image_size)(read_image(path))
    except UnreadableImageError as err:
        raise RetrievalError(f"cannot read the query image: {err}") from err


@torch.inference_mode()
def embed_batch(
    encoder: nn.Module, to_text_space: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor
) -> np.ndarray:
    """Images ``(B, 3, H, W)`` in [0, 1] → ``(B, D)`` float32 unit rows in the text space."""
    device = next(encoder.parameters()).device
    # Batches from readable_batches are pinned on a GPU machine: the copy runs asynchronously.
    vectors = to_text_space(encoder(images.to(device, non_blocking=True)).float())
    return F.normalize(vectors, dim=1).cpu().numpy().astype(np.float32)


class ImageFiles(Dataset):
    """Items ``(position, image or None, why not)``: images as ``load_query_image`` gives them."""

    def __init__(self, paths: Sequence[Path], image_size: int) -> None:
        self.paths = list(paths)
        self.image_size = image_size
        self.transform = eval_transform(image_size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            # Decoded whole, as training's loader does: a reduced-scale JPEG decode then resize
            # gives other pixels (up to 0.46 apart) and so other rankings than training scored.
            image = read_image(self.paths[position])
        except UnreadableImageError as err:
            return position, None, str(err)
        return position, self.transform(image), None


def collate_readable(
    items: list[tuple[int, torch.Tensor | None, str | None]],
) -> tuple[list[int], torch.Tensor | None, dict[int, str]]:
    """A batch of the readable images, their positions, and why the others were left out."""
    readable = [(position, image) for position, image, _ in items if image is not None]
    skipped = {position: reason for position, image, reason in items if image is None}
    images = torch.stack([image for _, image in readable]) if readable else None
    return [position for position, _ in readable], images, skipped


def readable_batches(
    paths: Sequence[Path],
    image_size: int,
    batch_size: int,
    num_workers: int,
    progress: bool,
    skipped: dict[int, str],
    desc: str = "embed",
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Batches ``(positions, images (B, 3, S, S) in [0, 1])`` of the readable images of
    ``paths``, read as retrieval reads them by ``num_workers`` DataLoader processes; the others
    go into ``skipped`` (position → why), counted in the log at the end."""
    loader = DataLoader(
        ImageFiles(paths, image_size),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_readable,
        pin_memory=torch.cuda.is_available(),
    )
    with tqdm(total=len(paths), unit="image", desc=desc, disable=not progress) as bar:
        for positions, images, unreadable in loader:
            skipped.update(unreadable)
            if images is not None:
                yield positions, images
            bar.update(len(positions) + len(unreadable))
    if skipped:
        log.warning("skipped %d unreadable of %d images", len(skipped), len(paths))


@dataclass
class Embeddings:
    """Unit text-space vectors of the readable images among ``paths`` of ``embed_images``."""

    vectors: np.ndarray  # (M, D) float32
    rows: list[int]  # the position in ``paths`` of each vector
    skipped: dict[int, str] = field(default_factory=dict)  # position → why it was unreadable


def embed_images(
    encoder: nn.Module,
    to_text_space: Callable[[torch.Tensor], torch.Tensor],
    paths: Sequence[Path],
    image_size: int,
    batch_size: int = 64,
    num_workers: int = 2,
    progress: bool = True,
) -> Embeddings:
    """Embed every readable image of ``paths`` (see the module docstring), in order.

    ``encoder`` runs where its parameters are (move it to the GPU first to embed there); images
    are decoded by ``num_workers`` DataLoader processes (0: in this one).
    """
    if batch_size < 1:
        raise RetrievalError(f"batch_size must be at least 1, got {batch_size}")
    dim = None
    chunks, rows, skipped = [], [], {}
    batches = readable_batches(paths, image_size, batch_size, num_workers, progress, skipped)
    for positions, images in batches:
        chunks.append(embed_batch(encoder, to_text_space, images))
        dim = chunks[-1].shape[1]
        rows += positions
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim or 0), np.float32)
    return Embeddings(vectors, rows, skipped)
