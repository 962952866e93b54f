"""Search an index with words or an image: ``Retriever`` holds an encoder and the index its
embeddings made and answers queries; ``query_sheet`` is one query from checkpoint to contact
sheet, for scripts and the gallery.

Example::

    result = query_sheet("run/checkpoints/last.ckpt", text="red star", dataset_dir="data/dataset",
                         split="test", output="sheets/")
    print(result.summary())              # the ranked posts and where the sheet went

    retriever = Retriever.open("run/checkpoints/last.ckpt", dataset_dir="data/dataset")
    for words in ["star", "moon"]:       # one encoder load, one index read, many queries
        retriever.sheet(retriever.search_text(words, k=8), f"sheets/{words}.png")
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from miro.devices import resolve_device
from miro.models.checkpoints import LoadedEncoder, load_encoder
from miro.report.sheets import contact_sheet, sheet_path
from miro.retrieval.build import build_index, default_index_dir, index_command
from miro.retrieval.embed import embed_batch, load_query_image, weights_hash
from miro.retrieval.errors import IndexMissingError, RetrievalError
from miro.retrieval.query import Hit, format_hits, search, text_query_vector
from miro.retrieval.store import IndexSettings, StoredIndex, check_model, index_exists, read_index

log = logging.getLogger(__name__)


@dataclass
class QueryResult:
    """The ranked posts of one query, and the contact sheet once written."""

    hits: list[Hit]
    index_dir: Path
    text: str | None = None
    image: Path | None = None
    unknown: tuple[str, ...] = ()  # words of ``text`` the text model does not know
    sheet: Path | None = None

    def summary(self) -> str:
        query = f"words={self.text!r}" if self.text is not None else f"image={self.image}"
        lines = [f"{query}: top {len(self.hits)} of the index in {self.index_dir}"]
        if self.unknown:
            lines.append(f"unknown words, left out: {', '.join(self.unknown)}")
        lines.append(format_hits(self.hits))
        if self.sheet is not None:
            lines.append(f"contact sheet: {self.sheet}")
        return "\n".join(lines)


class Retriever:
    """A text-supervised encoder and the index of its image embeddings: words or an image in,
    ranked posts out.

    Args:
        loaded: the encoder, its ``to_text_space`` and its text model (``load_encoder``).
        stored: an index this encoder built (``check_model`` has accepted it).
        settings: search-time settings (``ef_search``, ``nprobe``) applied to the index.
    """

    def __init__(
        self, loaded: LoadedEncoder, stored: StoredIndex, settings: IndexSettings | None = None
    ) -> None:
        self.loaded = loaded
        self.stored = stored
        (settings or IndexSettings()).tune(stored.index)

    @classmethod
    def open(
        cls,
        ckpt: str | Path,
        dataset_dir: str | Path | None = None,
        split: str | None = None,
        index_dir: str | Path | None = None,
        settings: IndexSettings | None = None,
        build_if_missing: bool = False,
        text_model_dir: str | Path | None = None,
        device: str = "auto",
        **build_options,
    ) -> "Retriever":
        """Load ``ckpt`` and its index: ``index_dir``, or the default one of ``dataset_dir`` and
        ``split``. A missing index is built when ``build_if_missing`` (with ``settings`` and
        ``build_options`` of ``build_index``), else ``IndexMissingError`` says how to build it.
        An index of another encoder raises ``IndexMismatchError``."""
        if index_dir is None and dataset_dir is None:
            raise RetrievalError("give the index: index_dir=DIR, or the dataset_dir it indexes")
        given, index_dir = index_dir, Path(index_dir or default_index_dir(ckpt, dataset_dir, split))
        loaded = load_encoder(ckpt, text_model_dir)
        loaded.encoder.to(resolve_device(device))
        if not index_exists(index_dir):
            if not build_if_missing or dataset_dir is None:
                raise IndexMissingError(
                    f"no index in {index_dir}. Build it with\n  "
                    f"{index_command(ckpt, dataset_dir or 'DIR', split, given)}\n"
                    "or add build_if_missing=true to this query to build it first"
                    + _other_indexes(index_dir)
                )
            log.info("no index in %s: building it", index_dir)
            build_index(
                ckpt,
                dataset_dir,
                split,
                index_dir,
                settings,
                device=device,
                loaded=loaded,
                **build_options,
            )
        stored = read_index(index_dir)
        rebuild = index_command(ckpt, stored.meta.dataset_dir, stored.meta.split, index_dir)
        check_model(stored.meta, weights_hash(loaded.encoder), loaded.embed_dim, ckpt, rebuild)
        return cls(loaded, stored, settings)

    def search_text(self, phrase: str, k: int = 12) -> QueryResult:
        """The ``k`` posts whose images are nearest to the words of ``phrase``.

        Raises ``UnknownWordsError`` when the text model knows none of its words."""
        loaded = self.loaded
        if loaded.text_model is None:
            reason = loaded.text_model_error
            raise RetrievalError(f"text queries need the encoder's text model: {reason}")
        vector, unknown = text_query_vector(loaded.text_model, loaded.prepare_targets, phrase)
        if unknown:
            log.warning("unknown words, left out of the query: %s", ", ".join(unknown))
        hits = search(self.stored, vector, k)
        return QueryResult(hits, self.stored.directory, text=phrase, unknown=tuple(unknown))

    def search_image(self, path: str | Path, k: int = 12) -> QueryResult:
        """The ``k`` posts whose images are nearest to the image at ``path``."""
        image = load_query_image(path, self.stored.meta.image_size)
        vector = embed_batch(self.loaded.encoder, self.loaded.to_text_space, image[None])[0]
        hits = search(self.stored, vector, k)
        return QueryResult(hits, self.stored.directory, image=Path(path))

    def sheet(
        self, result: QueryResult, output: str | Path, thumb_size: int = 160, columns: int = 6
    ) -> Path:
        """Write ``result``'s contact sheet to ``output`` (a ``.png`` path, or a folder for
        ``query-<words>.png``); returns its path, also kept in ``result.sheet``."""
        path = sheet_path(output, result.text, result.image)
        path.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(result.hits, result.text, result.image, thumb_size, columns).save(path)
        result.sheet = path
        return path


def _other_indexes(index_dir: Path) -> str:
    """A hint naming the indexes beside ``index_dir`` (another split, say), if any."""
    others = sorted(p.name for p in index_dir.parent.glob("*") if index_exists(p))
    if not others:
        return ""
    return f"\n(beside it: {', '.join(others)}; pick one with split= or index_dir=)"


def query_sheet(
    ckpt: str | Path,
    text: str | None = None,
    image: str | Path | None = None,
    k: int = 12,
    output: str | Path = ".",
    dataset_dir: str | Path | None = None,
    split: str | None = None,
    index_dir: str | Path | None = None,
    settings: IndexSettings | None = None,
    build_if_missing: bool = False,
    thumb_size: int = 160,
    **open_options,
) -> QueryResult:
    """One query from checkpoint to contact sheet: ``text`` or ``image`` (one of them), the top
    ``k`` posts, and the sheet written to ``output`` (see ``Retriever.sheet``)."""
    if (text is None) == (image is None):
        raise RetrievalError('give one query: words="WORDS" or image=FILE')
    retriever = Retriever.open(
        ckpt, dataset_dir, split, index_dir, settings, build_if_missing, **open_options
    )
    if text is not None:
        result = retriever.search_text(text, k)
    else:
        result = retriever.search_image(image, k)
    retriever.sheet(result, output, thumb_size)
    return result
