"""A labelled image folder of synthetic Miró motifs, for the linear probe of a trained encoder
(TextTopicNet's transfer test): ``out/<motif>/NNNN.jpg`` in torchvision's ImageFolder layout,
one motif a picture, drawn as the posts' images are.

Example::

    write_labelled_folder("data/probe", per_class=60, size=64, seed=0)
    # data/probe/bird/0000.jpg ... data/probe/star/0059.jpg
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from data_pipeline.synthetic.motifs import MOTIFS, compose


def write_labelled_folder(
    out: str | Path,
    per_class: int = 60,
    size: int = 64,
    seed: int = 0,
    classes: Sequence[str] = MOTIFS,
) -> Path:
    """Write ``per_class`` pictures of each motif of ``classes`` (256 px drawings saved at
    ``size`` px), the same bytes for the same seed. Returns ``out``."""
    unknown = sorted(set(classes) - set(MOTIFS))
    if unknown:
        raise ValueError(f"classes={unknown} are not motifs; choose among {sorted(MOTIFS)}")
    out, rng = Path(out), np.random.default_rng(seed)
    counts = dict.fromkeys(classes, 0)
    while min(counts.values()) < per_class:
        image, composition = compose(rng, 256, 256, num_motifs=1, size_range=(0.22, 0.45))
        motif = composition.motifs[0].name
        if counts.get(motif, per_class) < per_class:
            (out / motif).mkdir(parents=True, exist_ok=True)
            image.resize((size, size), Image.LANCZOS).save(out / motif / f"{counts[motif]:04d}.jpg")
            counts[motif] += 1
    return out
