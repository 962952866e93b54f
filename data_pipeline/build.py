"""Build the dataset: ``python -m data_pipeline.build raw=DIR out=DATASET``.

Reads raw posts in instaloader's layout and writes ``manifest.parquet``, a resized image cache
and ``report.json`` into ``out`` (see ``data_pipeline.dataset.build_dataset``).
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from data_pipeline.dataset import build_dataset
from data_pipeline.raw import RawFolderError
from data_pipeline.splits import SplitFractionsError

USAGE = "python -m data_pipeline.build raw=DIR out=DATASET"


@hydra.main(version_base="1.3", config_path="../conf", config_name="build")
def main(cfg: DictConfig) -> None:
    """Compose the config, build the dataset, print the counts and where it is."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        sys.exit(f"error: missing {', '.join(missing)}; usage: {USAGE}")
    tokenizer = hydra.utils.instantiate(cfg.tokenizer)
    try:
        report = build_dataset(
            cfg.raw,
            cfg.out,
            tokenizer,
            min_words=cfg.min_words,
            splits=OmegaConf.to_container(cfg.splits),
            image_short_side=cfg.image_short_side,
            jpeg_quality=cfg.jpeg_quality,
            max_image_pixels=cfg.max_image_pixels,
            num_workers=cfg.num_workers,
            progress=cfg.progress,
        )
    except (RawFolderError, SplitFractionsError) as error:
        sys.exit(f"error: {error}")
    print(report.table())
    print(f"dataset written to {report.dataset_dir} (manifest.parquet, report.json, images/)")


if __name__ == "__main__":
    main()
