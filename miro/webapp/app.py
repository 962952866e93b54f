"""The studio's page of three tabs and the local server behind it.

Requests wait in one bounded queue (``queue_size``) and each tab's work runs ``concurrency`` at
a time, so a burst of requests queues instead of piling threads onto the CPU; beyond the queue's
size Gradio refuses with a message. Nothing reaches the network: analytics are off, fonts are the
system's, and no share link is made.

Example::

    models = StudioModels.open(paths)
    blocks = build_studio(models, StudioSettings(), "outputs/studio/results")
    serve(blocks, models, "outputs/studio/results", host="127.0.0.1", port=7860)  # until Ctrl-C
"""

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from miro.webapp.dream_tab import dream_tab
from miro.webapp.models import StudioModels
from miro.webapp.results import ResultFiles
from miro.webapp.search_tab import search_tab
from miro.webapp.stylize_tab import stylize_tab

# System fonts: the default theme's Google Fonts would be fetched by the browser.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
)


@dataclass(frozen=True)
class StudioSettings:
    """How the studio computes.

    Args:
        max_size: long side, in pixels, of the photos stylized and dreamed (small keeps the
            sliders live on a CPU).
        noise_size: side of the grey-noise start of a dream without a photo.
        k: posts a search shows at first.
        concurrency: requests of one kind (stylize, dream, search) computed at once.
        queue_size: requests waiting at most; more are refused with a message.
    """

    max_size: int = 256
    noise_size: int = 192
    k: int = 12
    concurrency: int = 1
    queue_size: int = 64


def build_studio(
    models: StudioModels, settings: StudioSettings, results_dir: str | Path
) -> gr.Blocks:
    """The page: Stylize, Dream and Search tabs on ``models``, with a bounded queue; the
    pictures it shows are written into ``results_dir`` (``ResultFiles``)."""
    results = ResultFiles(results_dir)
    with gr.Blocks(title="miro studio", analytics_enabled=False) as blocks:
        gr.Markdown("# miro studio\nStylize photos, dream with the encoder, search the dataset.")
        with gr.Tab("Stylize", id="stylize"):
            stylize_tab(models.stylizer, settings.max_size, results)
        with gr.Tab("Dream", id="dream"):
            dream_tab(models.dream_model, settings.max_size, settings.noise_size, results)
        with gr.Tab("Search", id="search"):
            search_tab(models, settings.k)
    return blocks.queue(
        max_size=settings.queue_size, default_concurrency_limit=settings.concurrency
    )


def serve(
    blocks: gr.Blocks, models: StudioModels, results_dir: str | Path, host: str, port: int
) -> None:
    """Serve ``blocks`` on ``host``:``port`` until interrupted; the dataset's images (search
    results) and ``results_dir`` may be served."""
    blocks.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        theme=THEME,
        allowed_paths=[
            str(Path(path).resolve()) for path in (models.paths.dataset_dir, results_dir)
        ],
    )
