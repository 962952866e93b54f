"""The Dream tab: DeepDream on the encoder from a photo (or grey noise), on a layer, on every
overview layer (``all``: their contact sheet at the end) or toward typed words; each octave is
shown as it finishes.

Example::

    for image, stages in dream_stream(model, None, "inception4c", octaves=2, steps=3):
        ...   # image: the newest octave (H, W, 3) uint8; stages: [(image, caption), ...]
"""

from collections.abc import Iterator

import gradio as gr
import numpy as np

from miro.deepdream.models import DreamModel
from miro.deepdream.objectives import Objective, layer
from miro.deepdream.octaves import DreamSettings, dream_octaves, noise_image
from miro.deepdream.parse import parse_objective
from miro.deepdream.run import objective_spec
from miro.images import to_array
from miro.report.sheets import labelled_grid
from miro.webapp.messages import Upload, read_upload, shown_in_page
from miro.webapp.models import Unavailable
from miro.webapp.results import ResultFiles

ALL_LAYERS = "all"
Stages = list[tuple[np.ndarray, str]]


def dream_objectives(model: DreamModel, layer_name: str, words: str) -> list[tuple[str, Objective]]:
    """``(caption, objective)`` of each dream asked for: the words' text dream when words are
    typed, else one per overview layer for ``all``, else the layer's."""
    if words.strip():
        return [(words.strip(), parse_objective(objective_spec("text", "", words=words), model))]
    if layer_name == ALL_LAYERS:
        return [(name, layer(name)) for name in model.overview_layers]
    return [(layer_name, parse_objective(f"layer({layer_name})", model))]


def dream_stream(
    model: DreamModel,
    upload: Upload | None,
    layer_name: str,
    octaves: int = 3,
    steps: int = 5,
    words: str = "",
    max_size: int | None = 192,
    size: int = 128,
    seed: int = 0,
) -> Iterator[tuple[np.ndarray, Stages]]:
    """Dream and yield ``(newest image, finished stages)`` after every octave: the stages are
    the octaves of one dream, or the dream of each layer for ``all``, whose contact sheet comes
    last. The start is the upload (long side at most ``max_size``) or noise of ``size``."""
    start = noise_image(size, size, seed) if upload is None else read_upload(upload, max_size)[None]
    with shown_in_page():
        settings = DreamSettings(octaves=int(octaves), steps=int(steps))
        looks = dream_objectives(model, layer_name, words or "")
        stages: Stages = []  # the octaves of one dream, or the dream of each layer
        dreams = []  # (layer, dream) for the contact sheet of every layer
        for caption, objective in looks:
            for octave, image in enumerate(dream_octaves(model, start, objective, settings, seed)):
                newest = to_array(image)
                if len(looks) == 1:
                    stages.append((newest, f"octave {octave + 1}/{settings.octaves}"))
                yield newest, list(stages)
            if len(looks) > 1:
                stages.append((newest, caption))
                dreams.append((caption, image))
        if dreams:
            yield np.asarray(labelled_grid(dreams, columns=3)), stages


def dream_tab(
    model: DreamModel | Unavailable, max_size: int, size: int, results: ResultFiles
) -> None:
    """The tab's layout and events, inside a ``gr.Blocks``; the reason alone when it is off."""
    if isinstance(model, Unavailable):
        gr.Markdown(model.reason, elem_id="dream-unavailable")
        return
    with gr.Row():
        with gr.Column():
            photo = gr.Image(
                sources=["upload", "webcam"],
                type="filepath",
                label="Start (empty: noise)",
                elem_id="dream-photo",
            )
            choices = [ALL_LAYERS, *(name for name in model.layer_names if name != "output")]
            layer_name = gr.Dropdown(choices, value=model.default_layer, label="Layer")
            words = gr.Textbox(label="Or dream toward words", placeholder="red star, lluna, ...")
            octaves = gr.Slider(1, 6, value=3, step=1, label="Octaves")
            steps = gr.Slider(1, 20, value=5, step=1, label="Steps per octave")
            start = gr.Button("Dream", variant="primary")
        with gr.Column():
            newest = gr.Image(
                label="Dream", format="png", interactive=False, elem_id="dream-result"
            )
            stages = gr.Gallery(label="Octaves (or layers)", columns=4, elem_id="dream-stages")

    def run(upload, layer_name, octaves, steps, words):
        saved = []  # the stages already written: they only grow
        for newest, stages in dream_stream(
            model, upload, layer_name, octaves, steps, words, max_size, size
        ):
            saved += [(results.save(image), caption) for image, caption in stages[len(saved) :]]
            yield results.save(newest), list(saved)

    gr.on(
        [start.click, words.submit],
        run,
        inputs=[photo, layer_name, octaves, steps, words],
        outputs=[newest, stages],
        preprocess=False,
        api_name="dream",
    )
