"""The studio (`python -m miro.studio`): its callbacks on real tiny models, then the real app as
a user starts it, driven by Debian's chromium through playwright and by 20 concurrent clients.

One server for the module; its models are a tiny encoder (conftest's ``encoder_checkpoint``), a
3-style stylizer checkpoint (``test_stylize``'s) and 24 synthetic posts; photos are ≤ 64 px.
"""

import io
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import httpx
import numpy as np
import pytest
import torch
from conftest import ROOT, build_synthetic, command_env
from PIL import Image
from test_gallery import CHROMIUM, FLAGS
from test_stylize import NAMES, random_stylizer, write_checkpoint

from miro.images import load_image, to_array
from miro.style.apply import stylize
from miro.video import probe_video, write_video
from miro.webapp.app import StudioSettings, build_studio
from miro.webapp.dream_tab import dream_stream
from miro.webapp.models import StudioModels, StudioPaths, Unavailable
from miro.webapp.search_tab import search_posts
from miro.webapp.stylize_tab import style_mix, stylize_clip, stylize_photo

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAX_SIZE = 64


@pytest.fixture(scope="module")
def files(encoder_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """The studio's inputs: encoder, stylizer, dataset (a folder name of its own, so its index
    lies apart from other tests' on the shared encoder), a photo and a corrupt "photo"."""
    root = tmp_path_factory.mktemp("studio")
    dataset = build_synthetic(root, 24, "learnable").rename(root / "studio_posts")
    photo = root / "photo.png"
    Image.open(sorted((dataset / "images").rglob("*.jpg"))[0]).resize((48, 40)).save(photo)
    (root / "broken.png").write_bytes(b"not an image")
    moving = [torch.roll(load_image(photo), 2 * step, dims=2) for step in range(6)]
    write_video(moving, root / "clip.mp4", fps=12)
    (root / "broken.mp4").write_bytes(b"not a video")
    return {
        "encoder": encoder_checkpoint[0],
        "stylizer": write_checkpoint(root / "style.ckpt", random_stylizer()),
        "dataset": dataset,
        "photo": photo,
        "broken": root / "broken.png",
        "clip": root / "clip.mp4",
        "broken_clip": root / "broken.mp4",
    }


@pytest.fixture(scope="module")
def models(files) -> StudioModels:
    paths = StudioPaths(files["encoder"], files["stylizer"], files["dataset"], device="cpu")
    return StudioModels.open(paths)


def upload(path: Path) -> dict:
    """What Gradio hands a callback for an uploaded file (the events run with preprocess=False)."""
    return {"path": str(path), "orig_name": path.name}


def test_slider_weights_are_the_normalized_mix(models, files):
    assert style_mix([1.0, 0.0, 3.0], NAMES).weights == {"blue_ii": 0.25, "constellation": 0.75}
    loaded, photo = models.stylizer, upload(files["photo"])
    image = load_image(files["photo"])[None]
    with torch.inference_mode():
        only_last = to_array(stylize(loaded.stylizer, image, torch.tensor([2])))
        half_half = to_array(stylize(loaded.stylizer, image, torch.tensor([0.5, 0.0, 0.5])))
    assert np.array_equal(stylize_photo(loaded, photo, [0.0, 0.0, 0.3]), only_last)
    assert np.array_equal(stylize_photo(loaded, photo, [0.2, 0.0, 0.2]), half_half)
    assert not np.array_equal(half_half, only_last)
    assert stylize_photo(loaded, None, [1.0, 0.0, 0.0]) is None  # sliders moved before a photo


def test_a_video_is_stylized_with_its_frame_count_and_rate(models, files, tmp_path):
    output = stylize_clip(
        models.stylizer, upload(files["clip"]), [0.0, 1.0, 0.0], tmp_path / "styled.mp4"
    )
    source, styled = probe_video(files["clip"]), probe_video(output)
    assert (styled.frames, styled.fps, styled.size) == (6, source.fps, (48, 40))
    unreadable = (
        r"broken\.mp4 could not be read as a video \(not a readable video .*\)\. Upload a video"
    )
    with pytest.raises(gr.Error, match=unreadable):
        stylize_clip(models.stylizer, upload(files["broken_clip"]), [1, 0, 0], tmp_path / "b.mp4")


def test_user_mistakes_are_messages_that_say_what_to_do(models, files):
    with pytest.raises(gr.Error, match="Every style slider is at 0: move at least one above 0"):
        stylize_photo(models.stylizer, upload(files["photo"]), [0.0, 0.0, 0.0])
    corrupt = r"broken\.png could not be read as an image .*Upload a photo as JPEG, PNG or WebP"
    with pytest.raises(gr.Error, match=corrupt):
        stylize_photo(models.stylizer, upload(files["broken"]), [1.0, 0.0, 0.0])
    with pytest.raises(gr.Error, match=corrupt):
        search_posts(models.retriever, "", upload(files["broken"]))
    with pytest.raises(gr.Error, match=corrupt):
        next(dream_stream(models.dream_model, upload(files["broken"]), "inception4c"))
    with pytest.raises(gr.Error, match=r"knows none of the words.*'xyzzy'.*training captions"):
        search_posts(models.retriever, "xyzzy", None)
    with pytest.raises(gr.Error, match=r"does not know 'xyzzy'.*training captions"):
        next(dream_stream(models.dream_model, None, "inception4c", words="xyzzy"))
    with pytest.raises(gr.Error, match=r"unknown layer\(s\) \['inception9z'\]"):
        next(dream_stream(models.dream_model, None, "inception9z"))
    with pytest.raises(gr.Error, match=r"Type words .* or drop an image"):
        search_posts(models.retriever, "  ", None)


def test_wrong_or_missing_files_turn_off_only_their_tab_saying_how_to_make_them(files, tmp_path):
    swapped = StudioModels.open(
        StudioPaths(files["stylizer"], files["encoder"], tmp_path / "none", device="cpu")
    )
    assert "is not a stylizer checkpoint" in swapped.stylizer.reason
    assert "+experiment=miro_style" in swapped.stylizer.reason
    assert "is not a text-supervised encoder checkpoint" in swapped.dream_model.reason
    assert swapped.search == swapped.dream_model  # search needs the encoder first
    missing = StudioModels.open(
        StudioPaths(tmp_path / "e.ckpt", tmp_path / "s.ckpt", files["dataset"], device="cpu")
    )
    assert missing.stylizer == Unavailable(
        f"No stylizer checkpoint at {tmp_path / 's.ckpt'}. Make one with `make demo` or "
        "`python -m miro.train +experiment=miro_style`, then start the studio with "
        "stylizer=PATH/TO/last.ckpt."
    )
    assert "`python -m miro.train +experiment=instagram_text`" in missing.dream_model.reason
    only_dataset = StudioModels.open(
        StudioPaths(files["encoder"], tmp_path / "s.ckpt", tmp_path / "none", device="cpu")
    )
    assert not isinstance(only_dataset.dream_model, Unavailable)
    assert (
        "No dataset at" in only_dataset.search.reason and "make demo" in only_dataset.search.reason
    )
    page = json.dumps(build_studio(swapped, StudioSettings(), tmp_path / "results").config)
    assert swapped.stylizer.reason in page and swapped.dream_model.reason in page


def test_search_shows_the_nearest_posts_with_their_captions(models, files):
    posts = search_posts(models.retriever, "red star", None, k=5)
    assert len(posts) == 5 and all(Path(image).is_file() for image, _ in posts)
    assert [caption.split(".")[0] for _, caption in posts] == ["1", "2", "3", "4", "5"]
    first = posts[0][0]  # a dataset image finds itself first
    image_query = search_posts(models.retriever, "", upload(Path(first)), k=1)
    assert image_query[0][0] == first and image_query[0][1].endswith("(1.00)")
    assert models.retriever() is models.retriever()  # built once, kept for the session


def test_dream_shows_each_octave_then_every_layer_and_their_sheet(models):
    model = models.dream_model
    octaves = list(dream_stream(model, None, "inception4c", octaves=2, steps=1, size=48))
    assert [image.shape for image, _ in octaves] == [(34, 34, 3), (48, 48, 3)]
    assert [caption for _, caption in octaves[-1][1]] == ["octave 1/2", "octave 2/2"]
    every_layer = list(dream_stream(model, None, "all", octaves=1, steps=1, size=32))
    assert len(every_layer) == len(model.overview_layers) + 1  # one a layer, then the sheet
    sheet, stages = every_layer[-1]
    assert [caption for _, caption in stages] == list(model.overview_layers)
    assert sheet.shape[0] > 2 * 32 and sheet.shape[1] > 3 * 32  # three columns, three rows
    text = list(dream_stream(model, None, "inception4c", octaves=1, steps=2, words="red star"))
    assert text[-1][1][0][1] == "octave 1/1"


# --- the real app, as a user starts it -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def studio(files, tmp_path_factory) -> str:
    """``python -m miro.studio`` on the tiny models at a free port; its URL once it answers."""
    run_dir = tmp_path_factory.mktemp("studio_run")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "miro.studio",
        f"encoder={files['encoder']}",
        f"stylizer={files['stylizer']}",
        f"dataset_dir={files['dataset']}",
        "split=null",
        f"port={port}",
        f"settings.max_size={MAX_SIZE}",
        "settings.noise_size=48",
        f"hydra.run.dir={run_dir}",
    ]
    log = (run_dir / "studio.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=command_env(), stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while not is_up(url):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"the studio did not start:\n{(run_dir / 'studio.log').read_text()}")
        time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)
    log.close()
    assert "Traceback" not in (run_dir / "studio.log").read_text()  # user errors are messages


def is_up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def page(studio):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        tab = browser.new_page()
        tab.goto(studio)
        tab.wait_for_selector("#stylize-photo")
        yield tab
        browser.close()


def shown_image(page, selector: str, other_than: str | None = None) -> tuple[str, np.ndarray]:
    """The URL and pixels of the image in ``selector`` once shown (and not ``other_than``)."""
    page.wait_for_function(
        "([selector, old]) => { const img = document.querySelector(selector + ' img');"
        " return img && img.complete && img.naturalWidth > 0 && img.src !== old; }",
        arg=[selector, other_than],
        timeout=30_000,
    )
    src = page.locator(f"{selector} img").get_attribute("src")
    return src, np.asarray(Image.open(io.BytesIO(page.request.get(src).body())))


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium: `make test` installs it"
)


@needs_chromium
def test_upload_a_photo_then_a_style_slider_repaints_it(page, models, files):
    page.locator("#stylize-photo input[type=file]").set_input_files(files["photo"])
    first_src, first = shown_image(page, "#stylize-result")
    expected = stylize_photo(models.stylizer, upload(files["photo"]), [1.0, 0.0, 0.0])
    assert first.shape == expected.shape == (40, 48, 3)
    assert np.abs(first.astype(int) - expected).max() <= 1  # style 0 alone, as the app starts
    track = page.locator("#style-2 input[type=range]").bounding_box()
    page.mouse.click(track["x"] + 0.8 * track["width"], track["y"] + track["height"] / 2)
    _, mixed = shown_image(page, "#stylize-result", other_than=first_src)
    assert page.locator("#style-2 input[type=number]").input_value() == "0.8"
    assert np.abs(mixed.astype(int) - first).mean() > 1  # the mix repainted the photo


@needs_chromium
def test_a_corrupt_upload_shows_what_to_do_and_the_page_keeps_working(page, files):
    page.locator("#stylize-photo input[type=file]").set_input_files(files["broken"])
    message = page.get_by_text("broken.png could not be read as an image")
    message.wait_for(timeout=30_000)
    assert "Upload a photo as JPEG, PNG or WebP" in message.inner_text()
    page.locator("#stylize-photo button[aria-label='Remove Image']").click()
    page.locator("#stylize-photo input[type=file]").set_input_files(files["photo"])
    assert shown_image(page, "#stylize-result")[1].shape == (40, 48, 3)


def test_the_server_survives_20_concurrent_requests(studio, files):
    from gradio_client import Client, handle_file

    client = Client(studio, verbose=False)

    def request(index: int):
        photo = files["broken"] if index % 4 == 0 else files["photo"]
        try:
            return client.predict(
                handle_file(photo), 1.0, False, 1.0, 0.0, 0.0, api_name="/stylize"
            )
        except Exception as err:  # gradio_client's AppError carries the page's message
            return err

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(request, range(20)))
    painted = [answer for answer in replies if isinstance(answer, str)]
    refused = [str(answer) for answer in replies if not isinstance(answer, str)]
    assert len(painted) == 15, refused
    assert all(Image.open(path).size == (48, 40) for path in painted)
    assert len(refused) == 5 and all("could not be read as an image" in m for m in refused)
    posts = client.predict("red star", None, 3, api_name="/search")  # still answering
    assert len(posts) == 3 and all(Path(post["image"]).is_file() for post in posts)
    assert all(post["caption"].startswith(f"{i}. ") for i, post in enumerate(posts, 1))


def test_the_app_stylizes_a_video_file(studio, files):
    from gradio_client import Client, handle_file

    client = Client(studio, verbose=False)
    arguments = (1.0, False, 0.0, 0.0, 1.0)
    styled = client.predict(handle_file(files["clip"]), *arguments, api_name="/stylize_video")
    assert probe_video(styled).frames == 6
