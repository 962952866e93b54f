"""Search a dataset's images by words or by an image with a trained encoder:
`python -m miro.retrieve index ckpt=CKPT dataset_dir=DIR`, then
`python -m miro.retrieve query ckpt=CKPT dataset_dir=DIR words="red star"`."""

import sys

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from data_pipeline.manifest import DatasetNotFoundError
from miro.cli import exit_on, quote_non_ascii
from miro.devices import DeviceError
from miro.models.checkpoints import EncoderCheckpointError
from miro.retrieval.build import build_index
from miro.retrieval.errors import RetrievalError
from miro.retrieval.retriever import query_sheet

ACTIONS = ("index", "query")


def hydra_arguments(argv: list[str]) -> list[str]:
    """The command line as Hydra reads it: the first bare word as the action (``index ...`` →
    ``action=index ...``), and ``text=...`` as ``words=...`` (Hydra would read ``text=`` as a
    choice in the ``text`` config group)."""
    if argv and argv[0] in ACTIONS:
        argv = [f"action={argv[0]}", *argv[1:]]
    return [f"words={arg[len('text=') :]}" if arg.startswith("text=") else arg for arg in argv]


def run(cfg: DictConfig) -> str:
    """Build the index (``action=index``) or answer a query (``action=query``); the report."""
    if cfg.action not in ACTIONS:
        raise RetrievalError(
            "say what to do: `python -m miro.retrieve index ckpt=... dataset_dir=...` or "
            f"`python -m miro.retrieve query ckpt=... words=WORDS` (got action={cfg.action})"
        )
    if cfg.ckpt is None:
        raise RetrievalError(
            "give the encoder checkpoint: ckpt=PATH (train one with "
            "`python -m miro.train +experiment=instagram_text`)"
        )
    settings = instantiate(cfg.index)  # a bad index.* value: IndexSettings says which
    embedding = {
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "num_workers": cfg.num_workers,
        "progress": cfg.progress,
    }
    loading = {"text_model_dir": cfg.text_model_dir, "device": cfg.device}
    common = {"split": cfg.split, "index_dir": cfg.index_dir, "settings": settings}
    if cfg.action == "index":
        report = build_index(cfg.ckpt, cfg.dataset_dir, **common, **loading, **embedding)
        return report.summary()
    result = query_sheet(
        cfg.ckpt,
        text=None if cfg.words is None else str(cfg.words),  # words=2024 arrives as an int
        image=cfg.image,
        k=cfg.k,
        output=cfg.output,
        dataset_dir=cfg.dataset_dir,
        build_if_missing=cfg.build_if_missing,
        thumb_size=cfg.thumb_size,
        **common,
        **loading,
        **embedding,
    )
    return result.summary()


@hydra.main(version_base="1.3", config_path="../conf", config_name="retrieve")
def main(cfg: DictConfig) -> None:
    with exit_on(RetrievalError, EncoderCheckpointError, DatasetNotFoundError, DeviceError):
        print(run(cfg))


if __name__ == "__main__":
    sys.argv[1:] = quote_non_ascii(hydra_arguments(sys.argv[1:]))
    main()
