"""An HTML gallery of outputs: `python -m miro.gallery root=outputs/demo`."""

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from miro.report.gallery import Section, write_gallery


@hydra.main(version_base="1.3", config_path="../conf", config_name="gallery")
def main(cfg: DictConfig) -> None:
    sections = [Section(**instantiate(section)) for section in cfg.sections]
    page = write_gallery(cfg.root, sections, cfg.run_dir, cfg.title)
    print(f"gallery: {page}")


if __name__ == "__main__":
    main()
