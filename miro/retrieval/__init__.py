"""Text-to-image and image-to-image retrieval over a built dataset with a trained encoder.

``python -m miro.retrieve index ...`` / ``query ...`` on the command line; from Python::

    from miro.retrieval import build_index, query_sheet
    build_index(ckpt, "data/dataset", split="test")
    result = query_sheet(ckpt, text="red star", dataset_dir="data/dataset", split="test",
                         output="sheets/")    # result.hits, result.sheet (the PNG)
"""

from miro.retrieval.build import IndexReport, build_index, default_index_dir
from miro.retrieval.errors import (
    IndexMismatchError,
    IndexMissingError,
    RetrievalError,
    UnknownWordsError,
)
from miro.retrieval.retriever import QueryResult, Retriever, query_sheet
from miro.retrieval.store import IndexSettings

__all__ = [
    "IndexMismatchError",
    "IndexMissingError",
    "IndexReport",
    "IndexSettings",
    "QueryResult",
    "RetrievalError",
    "Retriever",
    "UnknownWordsError",
    "build_index",
    "default_index_dir",
    "query_sheet",
]
