"""Embed a built dataset's posts with a text-supervised encoder and write their faiss index.

Example::

    report = build_index("run/checkpoints/last.ckpt", "data/dataset", split="test")
    print(report.summary())   # where the index went, how many images, which were unreadable
"""

from dataclasses import dataclass
from pathlib import Path

from data_pipeline.manifest import SPLITS, read_manifest
from miro.devices import resolve_device
from miro.models.checkpoints import LoadedEncoder, load_encoder
from miro.retrieval.embed import embed_images, resolve_image_size, weights_hash
from miro.retrieval.errors import RetrievalError
from miro.retrieval.store import IndexMeta, IndexSettings, write_index


def default_index_dir(ckpt: str | Path, dataset_dir: str | Path, split: str | None) -> Path:
    """``<checkpoint's run dir>/retrieval/<dataset folder name>-<split or all>``."""
    run_dir = Path(ckpt).resolve().parent.parent
    return run_dir / "retrieval" / f"{Path(dataset_dir).resolve().name}-{split or 'all'}"


def index_command(
    ckpt: str | Path, dataset_dir: str | Path, split: str | None, index_dir: str | Path | None
) -> str:
    """The command line that builds this index."""
    words = ["python -m miro.retrieve index", f"ckpt={ckpt}", f"dataset_dir={dataset_dir}"]
    words += [f"split={split}"] if split else []
    words += [f"index_dir={index_dir}"] if index_dir else []
    return " ".join(words)


@dataclass
class IndexReport:
    """What ``build_index`` wrote."""

    directory: Path
    meta: IndexMeta

    def summary(self) -> str:
        meta = self.meta
        lines = [
            f"index: {self.directory}",
            f"{meta.count} images of {meta.dataset_dir} ({meta.split or 'every split'}) in a "
            f"{meta.dim}-d {meta.index['type']} index, {meta.image_size} px",
        ]
        if meta.skipped:
            lines.append(f"skipped {len(meta.skipped)} unreadable images:")
            lines += [f"  {path}: {reason}" for path, reason in list(meta.skipped.items())[:20]]
            if len(meta.skipped) > 20:
                lines.append(f"  ... and {len(meta.skipped) - 20} more (all in index.json)")
        return "\n".join(lines)


def build_index(
    ckpt: str | Path,
    dataset_dir: str | Path,
    split: str | None = None,
    index_dir: str | Path | None = None,
    settings: IndexSettings | None = None,
    image_size: int | str = "auto",
    batch_size: int = 64,
    num_workers: int = 2,
    device: str = "auto",
    text_model_dir: str | Path | None = None,
    progress: bool = True,
    loaded: LoadedEncoder | None = None,
) -> IndexReport:
    """Embed the posts of ``dataset_dir`` (a ``split``, or all) with the encoder of ``ckpt``
    and write their index into ``index_dir`` (default: ``default_index_dir``).

    Unreadable images are skipped and listed in ``index.json``; raises ``RetrievalError`` when
    none is readable. ``loaded``: the encoder already loaded from ``ckpt``.
    """
    if split is not None and split not in SPLITS:
        raise RetrievalError(f"split must be one of {', '.join(SPLITS)} or null, got {split!r}")
    settings = settings or IndexSettings()
    dataset_dir = Path(dataset_dir).resolve()
    index_dir = Path(index_dir or default_index_dir(ckpt, dataset_dir, split))
    loaded = loaded or load_encoder(ckpt, text_model_dir)
    image_size = resolve_image_size(image_size, ckpt)
    manifest = read_manifest(dataset_dir)
    rows = [i for i, s in enumerate(manifest["split"]) if split is None or s == split]
    if not rows:
        raise RetrievalError(f"{dataset_dir} has no {split} posts to index")
    encoder = loaded.encoder.to(resolve_device(device))
    embedded = embed_images(
        encoder,
        loaded.to_text_space,
        [dataset_dir / manifest["image"][row] for row in rows],
        image_size,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    skipped = {manifest["image"][rows[p]]: reason for p, reason in embedded.skipped.items()}
    if not embedded.rows:
        raise RetrievalError(f"none of the {len(rows)} images of {dataset_dir} could be read")
    kept = [rows[position] for position in embedded.rows]
    posts = {column: [manifest[column][row] for row in kept] for column in manifest}
    index = settings.build(embedded.vectors)
    meta = IndexMeta(
        checkpoint=str(Path(ckpt).resolve()),
        model_hash=weights_hash(loaded.encoder),
        dim=int(embedded.vectors.shape[1]),
        dataset_dir=str(dataset_dir),
        split=split,
        image_size=image_size,
        index=settings.built(index),
        count=len(kept),
        skipped=skipped,
    )
    write_index(index_dir, index, posts, meta)
    return IndexReport(index_dir, meta)
