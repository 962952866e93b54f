"""DeepDream (Mordvintsev, Olah and Tyka, Google 2015) on named layers of our networks.

Plain torch: a dream model (named layers, run only as deep as needed), composable objectives,
the octave loop with jitter and tiled gradients, zoom frames and video dreams (``miro.video``
reads and writes the files). Images are ``(B, 3, H, W)`` float RGB in [0, 1] everywhere.

Example::

    from miro.deepdream import DreamSettings, dream, googlenet, parse_objective

    model = googlenet(weights="IMAGENET1K_V1")
    objective = parse_objective("layer(inception4c)", model)
    image = dream(model, photo, objective, DreamSettings(octaves=4), seed=0, progress=True)
"""

from miro.deepdream.models import DreamModel, from_encoder, googlenet, text_encoder, vgg16
from miro.deepdream.objectives import (
    Objective,
    channel,
    guide,
    guide_features,
    layer,
    neuron,
    text,
)
from miro.deepdream.octaves import (
    DreamSettings,
    dream,
    dream_layers,
    dream_octaves,
    dream_step,
    noise_image,
    octave_sizes,
)
from miro.deepdream.parse import parse_objective
from miro.deepdream.progress import DreamProgress, ProgressBar
from miro.deepdream.text_space import model_text_vector, text_vector
from miro.deepdream.tiling import objective_gradient, tile_spans
from miro.deepdream.video import dream_video
from miro.deepdream.zoom import zoom_frames, zoom_rotate

__all__ = [
    "DreamModel",
    "DreamProgress",
    "DreamSettings",
    "Objective",
    "ProgressBar",
    "channel",
    "dream",
    "dream_layers",
    "dream_octaves",
    "dream_step",
    "dream_video",
    "from_encoder",
    "googlenet",
    "guide",
    "guide_features",
    "layer",
    "model_text_vector",
    "neuron",
    "noise_image",
    "objective_gradient",
    "octave_sizes",
    "parse_objective",
    "text",
    "text_encoder",
    "text_vector",
    "tile_spans",
    "vgg16",
    "zoom_frames",
    "zoom_rotate",
]
