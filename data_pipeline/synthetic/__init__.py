"""Synthetic Miró posts in instaloader's layout, with ground truth kept apart for evaluation.

Run ``python -m data_pipeline.synthetic out=DIR num_posts=N seed=S``, or from Python:

>>> from data_pipeline.synthetic import generate_posts
>>> summary = generate_posts("data/synthetic/raw", num_posts=100, seed=0)  # doctest: +SKIP
"""

from data_pipeline.synthetic.captions import LANGUAGES, motif_vocabulary
from data_pipeline.synthetic.generate import (
    GROUND_TRUTH,
    GeneratorSettings,
    Summary,
    generate_posts,
)
from data_pipeline.synthetic.motifs import BACKGROUNDS, MOTIFS, PALETTE

__all__ = [
    "BACKGROUNDS",
    "GROUND_TRUTH",
    "LANGUAGES",
    "MOTIFS",
    "PALETTE",
    "GeneratorSettings",
    "Summary",
    "generate_posts",
    "motif_vocabulary",
]
