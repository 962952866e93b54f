"""Text-to-image and image-to-image retrieval over a built dataset with a trained encoder:
the metrics (``metrics``: AP, P@k and their chance levels), the queries in four languages
(``queries``), faiss indexes (``store``), embedding images (``embed``), building an index
(``build``), answering queries (``query``, ``retriever``), scoring an encoder (``evaluation``) and
its linear probe (``probe``, ``labelled``).

``python -m miro.retrieve index ...`` / ``query ...`` on the command line; from Python::

    from miro.retrieval.build import build_index
    from miro.retrieval.retriever import query_sheet
    build_index(ckpt, "data/dataset", split="test")
    result = query_sheet(ckpt, text="red star", dataset_dir="data/dataset", split="test",
                         output="sheets/")    # result.hits, result.sheet (the PNG)
"""
