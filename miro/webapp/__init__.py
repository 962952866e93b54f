"""The studio: a local Gradio app on the trained models (``python -m miro.studio``).

- ``models``: the checkpoints and dataset the studio opens, each loaded once, or the sentence
  saying why its tab is off and which command makes what it needs.
- ``messages``: uploads read through ``miro.images``, and our user errors shown in the page
  (``gr.Error``) instead of a traceback.
- ``stylize_tab``, ``dream_tab``, ``search_tab``: each tab's callbacks (plain functions of the
  inputs, tested without a server) and its layout.
- ``app``: the page of three tabs, its bounded queue, and the local server.

Example::

    models = StudioModels.open(StudioPaths(encoder="last.ckpt", stylizer="style.ckpt",
                                           dataset_dir="data/dataset"))
    serve(build_studio(models, StudioSettings()), host="127.0.0.1", port=7860)
"""
