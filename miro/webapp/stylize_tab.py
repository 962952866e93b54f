"""The Stylize tab: a photo (upload or webcam), one slider per style of the checkpoint (their
weights are the mix, normalized to sum to 1), strength and colour preservation; the result is
painted again whenever a slider is let go, small enough (``max_size``) to keep up on a CPU. A
video file is stylized in the same mix by ``miro.style.video`` (flow-guided temporal blend,
the source's frame rate and sound), with a progress bar.

Example::

    choice = style_mix([1.0, 0.0, 3.0], ["blue_ii", "the_farm", "constellation"])
    choice.weights            # {"blue_ii": 0.25, "constellation": 0.75}
    picture = stylize_photo(loaded, upload, [1.0, 0.0, 3.0], strength=0.8)  # (H, W, 3) uint8
    stylize_clip(loaded, {"path": "clip.mp4"}, [1.0, 0.0, 3.0], Path("clip_stylized.mp4"))
"""

from collections.abc import Sequence
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from miro.images import to_array
from miro.models.checkpoints import LoadedStylizer
from miro.style.apply import stylize
from miro.style.runtime import torch_painter
from miro.style.styles import StyleChoice, choose_styles
from miro.style.tiling import Tiling
from miro.style.video import stylize_video
from miro.video import UnreadableVideoError
from miro.webapp.messages import Upload, read_upload, shown_in_page, unreadable
from miro.webapp.models import Unavailable
from miro.webapp.results import ResultFiles

FOLLOW_TQDM = gr.Progress(track_tqdm=True)  # as a default argument: Gradio shows tqdm's bars


def style_mix(weights: Sequence[float], style_names: Sequence[str]) -> StyleChoice:
    """The sliders' ``weights`` (one per style, ≥ 0) as the normalized mix of ``style_names``;
    ``gr.Error`` when every slider is at 0."""
    if not any(weight > 0 for weight in weights):
        raise gr.Error(
            "Every style slider is at 0: move at least one above 0 to choose the mix.",
            print_exception=False,
        )
    with shown_in_page():
        return choose_styles(None, dict(enumerate(weights)), style_names)[0]


def stylize_photo(
    loaded: LoadedStylizer,
    upload: Upload | None,
    weights: Sequence[float],
    strength: float = 1.0,
    preserve_color: bool = False,
    max_size: int | None = 256,
) -> np.ndarray | None:
    """The uploaded photo (long side capped at ``max_size``) painted in the mix of ``weights``,
    as an ``(H, W, 3)`` uint8 array; None before a photo is given."""
    if upload is None:
        return None
    image = read_upload(upload, max_size)
    choice = style_mix(weights, loaded.style_names)
    device = next(loaded.stylizer.parameters()).device
    with shown_in_page(), torch.inference_mode():
        painted = stylize(
            loaded.stylizer,
            image[None].to(device),
            choice.vector.to(device),
            strength,
            preserve_color,
        )
    return to_array(painted)


def stylize_clip(
    loaded: LoadedStylizer,
    upload: Upload | None,
    weights: Sequence[float],
    output: Path,
    strength: float = 1.0,
    preserve_color: bool = False,
    max_size: int | None = 256,
    progress: bool = True,
) -> Path:
    """The uploaded video (frames' long side capped at ``max_size``) painted in the mix of
    ``weights`` into ``output``, an ``.mp4`` with the source's frame count, rate and sound;
    ``progress``: a tqdm bar of frames (which ``gr.Progress(track_tqdm=True)`` shows)."""
    if upload is None:
        raise gr.Error("Drop a video file (.mp4, .mov, .webm) first.", print_exception=False)
    choice = style_mix(weights, loaded.style_names)
    device = next(loaded.stylizer.parameters()).device
    with shown_in_page():
        painter = torch_painter(loaded, str(device), strength, preserve_color, Tiling(), "")
        try:
            stylize_video(
                painter,
                Path(str(upload["path"])),
                {output: choice.vector},
                max_size=max_size,
                progress=progress,
            )
        except UnreadableVideoError as err:
            raise unreadable(upload, err, "video") from None
    return output


def stylize_tab(
    stylizer: LoadedStylizer | Unavailable, max_size: int, results: ResultFiles
) -> None:
    """The tab's layout and events, inside a ``gr.Blocks``; the reason alone when it is off."""
    if isinstance(stylizer, Unavailable):
        gr.Markdown(stylizer.reason, elem_id="stylize-unavailable")
        return
    with gr.Row():
        photo = gr.Image(
            sources=["upload", "webcam"], type="filepath", label="Photo", elem_id="stylize-photo"
        )
        result = gr.Image(
            label="Stylized",
            format="png",
            interactive=False,
            buttons=["download"],
            elem_id="stylize-result",
        )
    gr.Markdown("Style mix: the weights are normalized to sum to 1.")
    sliders = [
        gr.Slider(0, 1, value=float(i == 0), step=0.05, label=name, elem_id=f"style-{i}")
        for i, name in enumerate(stylizer.style_names)
    ]
    with gr.Row():
        strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength", elem_id="strength")
        preserve = gr.Checkbox(False, label="Keep the photo's colours", elem_id="preserve-color")
    with gr.Accordion("A video file, in the same mix", open=False):
        with gr.Row():
            clip = gr.Video(sources=["upload"], label="Video", elem_id="stylize-clip")
            styled_clip = gr.Video(label="Stylized video", interactive=False)
        start_clip = gr.Button("Stylize the video")

    def paint(upload, strength, preserve_color, *weights):
        painted = stylize_photo(stylizer, upload, weights, strength, preserve_color, max_size)
        return None if painted is None else results.save(painted)

    gr.on(
        [photo.change, strength.release, preserve.change, *(slider.release for slider in sliders)],
        paint,
        inputs=[photo, strength, preserve, *sliders],
        outputs=result,
        preprocess=False,  # the photo is read by miro.images: its errors say what to do
        api_name="stylize",
        trigger_mode="always_last",
    )

    def paint_clip(upload, strength, preserve_color, *weights, progress=FOLLOW_TQDM):
        output = results.new_path(".mp4")
        return str(
            stylize_clip(stylizer, upload, weights, output, strength, preserve_color, max_size)
        )

    start_clip.click(
        paint_clip,
        inputs=[clip, strength, preserve, *sliders],
        outputs=styled_clip,
        preprocess=False,
        api_name="stylize_video",
    )
