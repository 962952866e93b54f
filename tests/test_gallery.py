"""The demo's HTML gallery, rendered in headless Chromium (Debian's, installed by `make test`)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from miro.report.gallery import Section, write_gallery
from miro.video import write_video

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECTIONS = [
    Section("Retrieval", "Ranked images.", ["retrieval/*.png"]),
    Section("Dreams", "Per layer, and a clip.", ["dreams/*.png", "dreams/*.mp4"]),
    Section("Nothing yet", "No such folder.", ["absent/*.png"]),
]


def broken_media(page: Path) -> tuple[int, list[str]]:
    """How many images and videos the page has, and those Chromium could not load or play."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        tab = browser.new_page()
        tab.goto(page.as_uri(), wait_until="load")
        # A video settles when its first frame is decoded (readyState 2) or it fails.
        tab.wait_for_function(
            "[...document.querySelectorAll('video')].every(v => v.readyState >= 2 || v.error)"
        )
        count = tab.evaluate("document.images.length + document.querySelectorAll('video').length")
        broken = tab.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
            ".concat([...document.querySelectorAll('video')].filter(v => v.error))"
            ".map(m => m.getAttribute('src'))"
        )
        browser.close()
    return count, broken


@pytest.fixture
def outputs(tmp_path) -> Path:
    for name, colour in [("retrieval/red_star.png", "red"), ("dreams/layers.png", "blue")]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), colour).save(tmp_path / name)
    write_video(
        (torch.full((3, 32, 48), step / 8) for step in range(8)), tmp_path / "dreams" / "clip.mp4"
    )
    (tmp_path / "dreams" / "dream.json").write_text(json.dumps({"objective": "layer(x)"}))
    run = tmp_path / "encoder"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 12345\n")
    (run / "metrics.json").write_text(json.dumps({"test/map": 0.5, "test/map_chance": 0.125}))
    return tmp_path


def test_the_page_shows_sections_parameters_metrics_and_config(outputs):
    page = write_gallery(outputs, SECTIONS, run_dir=outputs / "encoder", title="demo")
    html = page.read_text()
    assert page == outputs / "index.html"
    assert 'src="retrieval/red_star.png"' in html and 'src="dreams/layers.png"' in html
    assert '<video src="dreams/clip.mp4"' in html
    assert "layer(x)" in html and "seed: 12345" in html
    assert "test/map_chance" in html and "0.1250" in html
    assert "absent/*.png matched nothing" in html


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: `make test` installs it")
def test_every_image_and_video_loads_in_chromium(outputs):
    page = write_gallery(outputs, SECTIONS, run_dir=outputs / "encoder")
    assert broken_media(page) == (3, [])
    (outputs / "dreams" / "layers.png").write_bytes(b"not a png")  # the check can fail
    (outputs / "dreams" / "clip.mp4").write_bytes(b"not a video")
    assert broken_media(page) == (3, ["dreams/layers.png", "dreams/clip.mp4"])
