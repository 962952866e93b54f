"""Build the dataset: ``python -m data_pipeline.build raw=DIR out=DATASET``.

Reads raw posts in instaloader's layout and writes ``manifest.parquet``, a resized image cache,
``report.json`` and ``build_state.sqlite`` into ``out`` (``data_pipeline.build.build_dataset``).
Every key of ``conf/build.yaml`` but ``raw``, ``out`` and ``tokenizer`` is a field of
``BuildSettings``. Building again into the same ``out`` processes only the posts that are new
since.
"""

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from data_pipeline.build.dataset import build_dataset
from data_pipeline.build.language import LanguageSettingsError
from data_pipeline.build.settings import BuildSettings, BuildSettingsError
from data_pipeline.build.splits import SplitFractionsError
from data_pipeline.raw import RawFolderError
from miro.cli import exit_on

USAGE = "python -m data_pipeline.build raw=DIR out=DATASET"
# The keys of conf/build.yaml that are not settings: the folders and the tokenizer's config.
NOT_SETTINGS = ("raw", "out", "tokenizer")


def read_settings(cfg: DictConfig) -> BuildSettings:
    """The build settings of a composed ``conf/build.yaml``, typed by ``BuildSettings``.

    Raises ``BuildSettingsError`` naming a key that is no field of ``BuildSettings`` or a value
    that does not convert to its field's type.
    """
    given = {
        key: value
        for key, value in OmegaConf.to_container(cfg, resolve=True).items()
        if key not in NOT_SETTINGS
    }
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(BuildSettings), given))
    except ConfigKeyError as error:
        raise BuildSettingsError(
            f"unknown build setting {error.full_key}; see conf/build.yaml"
        ) from None
    except ValidationError as error:
        reason = error.msg.splitlines()[0].rstrip(".")
        raise BuildSettingsError(
            f"build setting {error.full_key}: {reason}; see conf/build.yaml"
        ) from None


def build(cfg: DictConfig) -> str:
    """Build the dataset ``cfg`` describes; the counts and where it is."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise BuildSettingsError(f"missing {', '.join(missing)}; usage: {USAGE}")
    settings = read_settings(cfg)
    report = build_dataset(cfg.raw, cfg.out, hydra.utils.instantiate(cfg.tokenizer), settings)
    work = report.work
    return (
        f"{report.table()}\n"
        f"this run: {work['posts_read']:,} posts read, {work['captions_detected']:,} captions "
        f"language-detected, {work['images_processed']:,} images cached "
        f"({report.seconds:.1f} s)\n"
        f"dataset written to {report.dataset_dir} "
        "(manifest.parquet, report.json, images/, build_state.sqlite)"
    )


@hydra.main(version_base="1.3", config_path="../../conf", config_name="build")
def main(cfg: DictConfig) -> None:
    """Compose the config, build the dataset, print the counts and where it is."""
    with exit_on(RawFolderError, SplitFractionsError, BuildSettingsError, LanguageSettingsError):
        print(build(cfg))


if __name__ == "__main__":
    main()
