"""What the studio serves: the stylizer, the encoder's dream model and the search index, each
opened once for the whole session, or the sentence saying why its tab is off.

A missing or wrong file does not stop the studio: the tab that needs it says which command makes
what it needs (``Unavailable``), and the other tabs work. The index is built (or read) on the
first search, by ``miro.retrieval``, and kept.

Example::

    models = StudioModels.open(StudioPaths("enc.ckpt", "style.ckpt", "data/demo/dataset"))
    models.stylizer          # a LoadedStylizer, or Unavailable("No stylizer checkpoint at ...")
    models.retriever()       # the Retriever, opened on the first call and kept
"""

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from data_pipeline.manifest import MANIFEST_FILE
from miro.deepdream.models import DreamModel, from_encoder
from miro.devices import resolve_device
from miro.models.checkpoints import (
    STYLE_TRAIN_COMMAND,
    TRAIN_COMMAND,
    CheckpointError,
    LoadedStylizer,
    load_encoder,
    load_stylizer,
)
from miro.retrieval.retriever import Retriever

log = logging.getLogger(__name__)

BUILD_COMMAND = "python -m data_pipeline.build raw=RAW out=DIR"


@dataclass(frozen=True)
class Unavailable:
    """Why a tab is off: a sentence naming the file and the command that makes it."""

    reason: str


@dataclass(frozen=True)
class StudioPaths:
    """What the studio opens.

    Args:
        encoder: a checkpoint of ``python -m miro.train +experiment=instagram_text`` (Dream,
            Search).
        stylizer: a checkpoint of ``python -m miro.train +experiment=miro_style`` (Stylize).
        dataset_dir: the dataset searched (Search), built by ``python -m data_pipeline.build``.
        text_model_dir: the encoder's text model, when not in its run dir.
        split: the posts searched (train, val, test), or None for every post.
        device: auto, cpu or cuda.
    """

    encoder: str | Path
    stylizer: str | Path
    dataset_dir: str | Path
    text_model_dir: str | Path | None = None
    split: str | None = None
    device: str = "auto"


def open_stylizer(path: Path, device: str) -> LoadedStylizer | Unavailable:
    """The stylizer of ``path`` on ``device``, or why the Stylize tab is off."""
    if not path.is_file():
        return Unavailable(
            f"No stylizer checkpoint at {path}. Make one with `make demo` or "
            f"`{STYLE_TRAIN_COMMAND}`, then start the studio with stylizer=PATH/TO/last.ckpt."
        )
    try:
        loaded = load_stylizer(path)
    except CheckpointError as err:
        return Unavailable(f"{err}. Start the studio with stylizer=PATH of a stylizer checkpoint.")
    loaded.stylizer.to(resolve_device(device))
    return loaded


def open_dream_model(
    path: Path, text_model_dir: str | Path | None, device: str
) -> DreamModel | Unavailable:
    """The encoder of ``path`` as a dream model on ``device``, or why Dream and Search are off."""
    if not path.is_file():
        return Unavailable(
            f"No encoder checkpoint at {path}. Make one with `make demo` or `{TRAIN_COMMAND}`, "
            "then start the studio with encoder=PATH/TO/last.ckpt."
        )
    try:
        loaded = load_encoder(path, text_model_dir)
    except CheckpointError as err:
        return Unavailable(f"{err}. Start the studio with encoder=PATH of an encoder checkpoint.")
    model = from_encoder(
        loaded.encoder, loaded.to_text_space, loaded.text_model, loaded.prepare_targets
    )
    model.text_model_error = loaded.text_model_error
    return model.to(resolve_device(device))


class StudioModels:
    """The studio's models, opened once: ``stylizer`` and ``dream_model`` (each the model or an
    ``Unavailable``), ``search`` (None when searching can work, else ``Unavailable``) and the
    search index through ``retriever()``."""

    def __init__(
        self,
        paths: StudioPaths,
        stylizer: LoadedStylizer | Unavailable,
        dream_model: DreamModel | Unavailable,
        search: Unavailable | None,
    ) -> None:
        self.paths = paths
        self.stylizer = stylizer
        self.dream_model = dream_model
        self.search = search
        self._retriever: Retriever | None = None
        self._opening = threading.Lock()  # two first searches build the index once

    @classmethod
    def open(cls, paths: StudioPaths) -> "StudioModels":
        """Load what ``paths`` name; what cannot be loaded turns its tab off, said in the log."""
        stylizer = open_stylizer(Path(paths.stylizer), paths.device)
        dream_model = open_dream_model(Path(paths.encoder), paths.text_model_dir, paths.device)
        search = dream_model if isinstance(dream_model, Unavailable) else None
        if search is None and not (Path(paths.dataset_dir) / MANIFEST_FILE).is_file():
            search = Unavailable(
                f"No dataset at {paths.dataset_dir}. Make one with `make demo` or "
                f"`{BUILD_COMMAND}`, then start the studio with dataset_dir=DIR."
            )
        for tab, state in [("Stylize", stylizer), ("Dream", dream_model), ("Search", search)]:
            if isinstance(state, Unavailable):
                log.warning("the %s tab is off: %s", tab, state.reason)
        return cls(paths, stylizer, dream_model, search)

    def retriever(self) -> Retriever:
        """The encoder and the dataset's index, built on the first call if missing (into the
        encoder's run dir, as ``python -m miro.retrieve index`` would) and kept."""
        with self._opening:
            if self._retriever is None:
                paths = self.paths
                self._retriever = Retriever.open(
                    paths.encoder,
                    paths.dataset_dir,
                    paths.split,
                    build_if_missing=True,
                    text_model_dir=paths.text_model_dir,
                    device=paths.device,
                    num_workers=0,
                    progress=False,
                )
            return self._retriever
