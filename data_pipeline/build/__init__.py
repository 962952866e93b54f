"""The dataset build stage: raw instaloader posts → ``manifest.parquet``, images, report.

Run ``python -m data_pipeline.build raw=DIR out=DATASET``, or from Python:

>>> from data_pipeline.build import build_dataset
>>> report = build_dataset("data/raw", "data/dataset", tokenizer)  # doctest: +SKIP
"""

from data_pipeline.build.dataset import build_dataset
from data_pipeline.build.settings import BuildSettings, BuildSettingsError

__all__ = ["BuildSettings", "BuildSettingsError", "build_dataset"]
