"""The dataset build stage: raw instaloader posts → manifest.parquet + image cache + report."""

import io
import json
import lzma
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import instaloader
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_module
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image, ImageDraw

from data_pipeline.build import (
    BuildSettings,
    BuildSettingsError,
    build_dataset,
    dedupe,
    image_cache,
)
from data_pipeline.build.__main__ import read_settings
from data_pipeline.build.dedupe import HammingIndex
from data_pipeline.build.filters import DROP_REASONS, written_words
from data_pipeline.build.language import LanguageSettingsError
from data_pipeline.build.splits import SplitFractionsError, assign_split
from data_pipeline.build.state import STATE_FILE
from data_pipeline.images import ImageTooLarge, UnreadableImage, open_image
from data_pipeline.manifest import (
    MANIFEST_FILE,
    MANIFEST_SCHEMA,
    DatasetNotFoundError,
    read_manifest,
)
from data_pipeline.raw import RawFolderError

REPO = Path(__file__).resolve().parents[1]
CONTEXT = instaloader.Instaloader(quiet=True).context
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
EVERY_COLUMN = MANIFEST_SCHEMA.names
GOOD_CAPTION = "Una estrella roja sobre fondo azul, pájaro y luna #JoanMiro #Constellation"


@pytest.fixture(scope="module")
def cfg():
    """The real build config, composed as the CLI composes it."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("build", overrides=["raw=unused", "out=unused"])


@pytest.fixture(scope="module")
def tokenizer(cfg):
    return instantiate(cfg.tokenizer)


def build(raw: Path, out: Path, tokenizer, **overrides):
    # Small test images pass the size check unless a test asks for it.
    options = {"min_words": 3, "workers": 0, "progress": False, "min_image_side": 16}
    return build_dataset(raw, out, tokenizer, **(options | overrides))


def drops(report, **expected: int) -> dict[str, int]:
    """Every drop reason at zero but those given: what ``report.dropped`` should be."""
    return dict.fromkeys(DROP_REASONS, 0) | expected


def manifest_rows(out: Path) -> list[dict]:
    """The manifest's rows with every column, in id order."""
    columns = read_manifest(out, EVERY_COLUMN)
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def by_id(out: Path, column: str) -> dict:
    manifest = read_manifest(out, ("id", column))
    return dict(zip(manifest["id"], manifest[column], strict=True))


def stem_at(index: int) -> str:
    return (START + timedelta(minutes=index)).strftime("%Y-%m-%d_%H-%M-%S_UTC")


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def smooth(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A photo-like image: random colours smoothly interpolated (pHash is stable on these)."""
    cells = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(cells, "RGB").resize(size, Image.Resampling.BICUBIC)


def disc_on_background(colour: tuple[int, int, int]) -> Image.Image:
    """One background with a small disc: pHash barely sees the disc, its colour least of all."""
    image = smooth((400, 300), seed=4)
    ImageDraw.Draw(image).ellipse((170, 120, 230, 180), fill=colour)
    return image


def jpeg_bytes(image: Image.Image, **save_options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **save_options)
    return buffer.getvalue()


def png_bytes(image: Image.Image, **save_options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save_options)
    return buffer.getvalue()


def save_metadata(
    path: Path, shortcode: str, caption: str | None, index: int, owner: str | None = "Miro_Fan"
) -> None:
    """A real instaloader ``Post`` structure, saved the way instaloader saves it."""
    node = {
        "__typename": "GraphImage",
        "shortcode": shortcode,
        "id": str(1000 + index),
        "owner": {"id": "42"} | ({"username": owner} if owner else {}),
        "taken_at_timestamp": int((START + timedelta(minutes=index)).timestamp()),
        "edge_media_to_caption": {"edges": [{"node": {"text": caption}}] if caption else []},
        "is_video": False,
        "display_url": "https://example.invalid/p.jpg",
        "dimensions": {"width": 320, "height": 320},
    }
    instaloader.save_structure_to_file(instaloader.Post(CONTEXT, node), str(path))


def write_post(
    folder: Path,
    index: int,
    *,
    image: bytes | Image.Image | None = None,
    txt: str | None = GOOD_CAPTION,
    json_caption: str | None = None,
    metadata: bool = True,
    owner: str | None = "Miro_Fan",
    carousel: list[bytes] | None = None,
) -> str:
    """Write one post in instaloader's layout; returns its id (the shortcode, or the stem)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / stem_at(index)
    if carousel is not None:
        for number, data in enumerate(carousel, start=1):
            Path(f"{stem}_{number}.jpg").write_bytes(data)
    else:
        image = noise((400, 300), seed=index) if image is None else image
        if isinstance(image, Image.Image):
            image.save(f"{stem}.jpg" if image.mode in ("RGB", "CMYK") else f"{stem}.png")
        else:
            Path(f"{stem}.jpg").write_bytes(image)
    if txt is not None:
        Path(f"{stem}.txt").write_text(txt + "\n", encoding="utf-8")
    if not metadata:
        return stem.name
    shortcode = f"SC{index:04d}"
    save_metadata(Path(f"{stem}.json.xz"), shortcode, json_caption or txt, index, owner)
    return shortcode


def test_bad_posts_are_dropped_and_counted_while_the_rest_is_intact(tmp_path, tokenizer):
    raw, out = tmp_path / "raw" / "#joanmiro", tmp_path / "dataset"
    good = [write_post(raw, index) for index in range(3)]
    only_json = write_post(raw, 3, txt=None, json_caption="Pintura con estrellas y pájaros azules")
    truncated = jpeg_bytes(noise((400, 300), seed=9))
    write_post(raw, 10, image=b"this is not an image")
    write_post(raw, 11, image=truncated[: len(truncated) // 2])
    write_post(raw, 12, txt="   ")
    write_post(raw, 13, txt="🎨✨🔥 #joanmiro #miro #art @fundaciomiro")
    write_post(raw, 14, txt=None, json_caption=None)
    write_post(raw, 15, txt="Two words")
    write_post(raw, 16, image=b"")  # a 0-byte image file
    latin = write_post(raw, 17)  # a caption file that is not UTF-8
    cp1252 = "Estrelles i ocells blaus a la nit, Miró".encode("cp1252")
    (raw / f"{stem_at(17)}.txt").write_bytes(cp1252)
    huge = write_post(raw, 18, txt="Red stars and blue birds over the moon. " * 26_000)  # ~1 MB
    gif_only = write_post(raw, 19)  # its only image is a GIF, which posts on Instagram never are
    (raw / f"{stem_at(19)}.jpg").unlink()
    noise((64, 64), seed=19).save(raw / f"{stem_at(19)}.gif")
    (raw / f"{stem_at(0)}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")  # a video beside a post
    (raw / "ground_truth.jsonl").write_text('{"id": 1}\n')
    (raw / f"{stem_at(0)}_comments.json").write_text("[]")

    report = build(raw.parent, out, tokenizer)

    assert report.seen == 14  # the video, the comments and ground_truth.jsonl are not posts
    assert report.kept == 6
    # Three hashtags are three words as written: the emoji post passes the word count (as in
    # the papers) and is dropped by language (lingua reads "joanmiro miro art" as Polish).
    assert report.dropped == drops(
        report, no_caption=2, too_few_words=1, wrong_language=1, image_unreadable=4
    )
    assert report.seen == report.kept + sum(report.dropped.values())
    manifest = read_manifest(out)
    assert manifest["id"] == sorted([*good, only_json, latin, huge])
    assert gif_only not in manifest["id"]
    captions = by_id(out, "caption")
    assert captions[only_json] == "Pintura con estrellas y pájaros azules"
    assert captions[latin].startswith("Estrelles i ocells blaus")  # undecodable bytes replaced
    assert len(captions[huge]) > 1_000_000
    assert captions[good[0]] == GOOD_CAPTION
    for relative in manifest["image"]:
        with Image.open(out / relative) as image:
            image.load()
            assert image.mode == "RGB"
            assert image.size == (341, 256)
    written = json.loads((out / "report.json").read_text())
    assert written["dropped"] == report.dropped
    assert written["splits"] == report.splits
    assert sum(report.splits.values()) == 6


def test_manifest_columns_types_and_values(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    shortcode = write_post(raw, 0, txt="Mujer, pájaro y ESTRELLA #JoanMiro #Pintura #joanmiro")
    stem_id = write_post(raw, 1, metadata=False)
    # instaloader would fetch a missing owner name from Instagram; the build must not: the
    # node's owner id names the owner instead (enough to cap prolific users).
    ownerless = write_post(raw, 2, owner=None)

    build(raw, out, tokenizer)

    table = pq.read_table(out / MANIFEST_FILE)
    assert table.schema.remove_metadata() == MANIFEST_SCHEMA
    assert table.column_names == [
        *("id", "split", "caption", "language", "owner", "date", "hashtags"),
        *("image", "source", "width", "height"),
    ]
    rows = {row["id"]: row for row in table.to_pylist()}
    assert sorted(rows) == table.column("id").to_pylist() == sorted([shortcode, stem_id, ownerless])
    assert rows[ownerless]["owner"] == "id:42"
    full = rows[shortcode]
    assert full["language"] == "es"
    assert full["owner"] == "miro_fan"
    assert full["date"] == START
    assert full["hashtags"] == ["joanmiro", "pintura"]
    assert full["split"] in {"train", "val", "test"}
    assert full["image"].startswith("images/") and (out / full["image"]).is_file()
    assert full["source"] == str((raw / f"{stem_at(0)}.jpg").resolve())
    without_metadata = rows[stem_id]
    assert without_metadata["owner"] is None
    assert without_metadata["date"] == START + timedelta(minutes=1)  # read from the file stem


def test_reading_a_dir_without_a_dataset_says_how_to_build_one(tmp_path):
    with pytest.raises(DatasetNotFoundError) as raised:
        read_manifest(tmp_path)
    assert isinstance(raised.value, FileNotFoundError)
    assert str(raised.value) == (
        f"no dataset at {tmp_path} (manifest.parquet is missing). Make one with either\n"
        f"  python -m data_pipeline.scrape out=RAW && python -m data_pipeline.build raw=RAW "
        f"out={tmp_path}\n"
        "or, offline:\n"
        f"  python -m data_pipeline.synthetic out=RAW && python -m data_pipeline.build raw=RAW "
        f"out={tmp_path}\n"
        "then pass data.dataset_dir=DIR"
    )


def test_images_are_resized_to_the_short_side_and_never_upscaled(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    sizes = {
        write_post(raw, 0, image=noise((640, 480))): (341, 256),
        write_post(raw, 1, image=noise((1000, 2400))): (256, 614),  # decoded in draft mode
        write_post(raw, 2, image=noise((200, 150))): (200, 150),
    }
    build(raw, out, tokenizer)
    for row in manifest_rows(out):
        assert (row["width"], row["height"]) == sizes[row["id"]]
        with Image.open(out / row["image"]) as image:
            assert image.size == sizes[row["id"]]


def test_any_mode_becomes_rgb_and_transparency_white(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    palette = Image.new("P", (64, 64), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255])
    palette.info["transparency"] = 1
    sixteen_bit = Image.fromarray(np.full((64, 64), 40000, dtype=np.uint16))
    expected = {
        write_post(raw, 0, image=Image.new("CMYK", (64, 64), (0, 255, 255, 0))): (255, 0, 0),
        write_post(raw, 1, image=Image.new("RGBA", (64, 64), (255, 0, 0, 0))): (255, 255, 255),
        write_post(raw, 2, image=Image.new("LA", (64, 64), (0, 255))): (0, 0, 0),
        write_post(raw, 3, image=palette): (255, 255, 255),
        write_post(raw, 4, image=sixteen_bit): (156, 156, 156),
    }
    # Two of these are the same white square and all are flat: no duplicate check here.
    report = build(raw, out, tokenizer, exact_duplicates=False, near_duplicate_distance=None)
    assert report.kept == 5
    for row in manifest_rows(out):
        with Image.open(out / row["image"]) as image:
            assert image.mode == "RGB"
            assert image.getpixel((32, 32)) == pytest.approx(expected[row["id"]], abs=6)


def test_exif_orientation_is_applied(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    stored = Image.new("RGB", (200, 100), (255, 0, 0))
    stored.paste((0, 0, 255), (100, 0, 200, 100))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise: left becomes top
    write_post(raw, 0, image=jpeg_bytes(stored, exif=exif))
    build(raw, out, tokenizer)
    row = manifest_rows(out)[0]
    assert (row["width"], row["height"]) == (100, 200)
    with Image.open(out / row["image"]) as image:
        assert image.getpixel((50, 20)) == pytest.approx((255, 0, 0), abs=30)
        assert image.getpixel((50, 180)) == pytest.approx((0, 0, 255), abs=30)


def test_decompression_bombs_are_dropped(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    small = write_post(raw, 0, image=noise((100, 100)))
    write_post(raw, 1, image=noise((400, 400)))
    report = build(raw, out, tokenizer, max_image_pixels=50_000)
    assert report.dropped == drops(report, image_too_large=1)
    assert read_manifest(out)["id"] == [small]


def test_pillows_own_bomb_limit_is_a_counted_drop_too(tmp_path, tokenizer, monkeypatch):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    small = write_post(raw, 0, image=noise((30, 30)))
    write_post(raw, 1, image=noise((200, 200)))
    # Above 2 x MAX_IMAGE_PIXELS Pillow raises DecompressionBombError on open.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    with pytest.raises(ImageTooLarge):
        open_image(jpeg_bytes(noise((200, 200))), max_pixels=10**9)
    report = build(raw, out, tokenizer, max_image_pixels=10**9)
    assert report.dropped == drops(report, image_too_large=1)
    assert read_manifest(out)["id"] == [small]


def test_splits_are_deterministic_stable_and_near_the_fractions(tmp_path, tokenizer):
    fractions = {"train": 0.8, "val": 0.1, "test": 0.1}
    ids = [f"C{number:05d}xyz" for number in range(200)]
    splits = [assign_split(post_id, fractions) for post_id in ids]
    assert splits == [assign_split(post_id, dict(fractions)) for post_id in ids]
    counts = {name: splits.count(name) for name in fractions}
    assert 140 <= counts["train"] <= 180
    assert 8 <= counts["val"] <= 35 and 8 <= counts["test"] <= 35

    raw, out = tmp_path / "raw", tmp_path / "dataset"
    for index in range(12):
        write_post(raw, index, image=noise((32, 32), seed=index))
    build(raw, out, tokenizer, splits=fractions)
    before = by_id(out, "split")
    for index in range(12, 30):
        write_post(raw, index, image=noise((32, 32), seed=index))
    build(raw, out, tokenizer, splits=fractions)
    after = by_id(out, "split")
    assert len(after) == 30
    assert {post_id: after[post_id] for post_id in before} == before


def test_split_fractions_must_sum_to_one(tmp_path, tokenizer):
    write_post(tmp_path / "raw", 0)
    with pytest.raises(SplitFractionsError, match="sum to 1"):
        build(tmp_path / "raw", tmp_path / "dataset", tokenizer, splits={"train": 0.8, "val": 0.1})


def test_rerun_reuses_the_image_cache_and_gives_the_same_manifest(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    for index in range(6):
        write_post(raw, index)
    build(raw, out, tokenizer, workers=2)
    first = read_manifest(out, EVERY_COLUMN)
    cached = sorted((out / "images").rglob("*.jpg"))
    assert len(cached) == 6
    for path in cached:
        os.utime(path, ns=(10**18, 10**18))
    inodes = [path.stat().st_ino for path in cached]

    build(raw, out, tokenizer, workers=2)

    assert read_manifest(out, EVERY_COLUMN) == first
    assert sorted((out / "images").rglob("*.jpg")) == cached
    assert [path.stat().st_mtime_ns for path in cached] == [10**18] * 6
    assert [path.stat().st_ino for path in cached] == inodes
    build(raw, out, tokenizer, image_short_side=128)  # other parameters, other cache files
    assert len(list((out / "images").rglob("*.jpg"))) == 12


def test_hashtag_folders_carousels_and_duplicates(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    in_joanmiro = write_post(raw / "#joanmiro", 0)
    bad_first = write_post(
        raw / "#miro", 1, carousel=[b"corrupt", jpeg_bytes(noise((300, 600), seed=1))]
    )
    good_first = write_post(
        raw / "#miro",
        2,
        carousel=[jpeg_bytes(noise((600, 300), seed=2)), jpeg_bytes(noise((300, 600), seed=3))],
    )
    write_post(raw / "#miro", 0)  # the #joanmiro post, saved again under #miro

    report = build(raw, out, tokenizer)

    assert report.seen == 4
    assert report.dropped["duplicate_id"] == 1
    rows = {row["id"]: row for row in manifest_rows(out)}
    assert sorted(rows) == sorted([in_joanmiro, bad_first, good_first])
    assert "#joanmiro" in rows[in_joanmiro]["source"]
    assert rows[bad_first]["source"].endswith(f"{stem_at(1)}_2.jpg")
    assert (rows[bad_first]["width"], rows[bad_first]["height"]) == (256, 512)
    assert rows[good_first]["source"].endswith(f"{stem_at(2)}_1.jpg")
    assert (rows[good_first]["width"], rows[good_first]["height"]) == (512, 256)


def test_unloadable_metadata_counts_as_missing(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    write_post(raw, 0, metadata=False)
    with lzma.open(raw / f"{stem_at(0)}.json.xz", "wt") as file:
        file.write('{"not": "an instaloader structure"}')
    write_post(raw, 1, metadata=False)
    (raw / f"{stem_at(1)}.json.xz").write_bytes(b"\x00 not xz at all")
    report = build(raw, out, tokenizer)
    assert report.kept == 2
    assert read_manifest(out)["id"] == [stem_at(0), stem_at(1)]


def test_missing_or_empty_raw_folder_is_a_clear_error(tmp_path, tokenizer):
    with pytest.raises(RawFolderError, match="does not exist"):
        build(tmp_path / "nowhere", tmp_path / "dataset", tokenizer)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RawFolderError, match="no instaloader posts"):
        build(tmp_path / "empty", tmp_path / "dataset", tokenizer)


def test_images_below_min_side_are_dropped_and_a_carousel_falls_back(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    big = write_post(raw, 0, image=noise((300, 200)))
    write_post(raw, 1, image=noise((400, 100)))  # short side 100
    carousel = write_post(
        raw, 2, carousel=[jpeg_bytes(noise((90, 90))), jpeg_bytes(noise((200, 260), seed=5))]
    )
    report = build(raw, out, tokenizer, min_image_side=128)
    assert report.dropped == drops(report, image_too_small=1)
    rows = {row["id"]: row for row in manifest_rows(out)}
    assert sorted(rows) == sorted([big, carousel])
    assert rows[carousel]["source"].endswith(f"{stem_at(2)}_2.jpg")


def test_exif_orientations_and_cmyk_jpegs_come_out_upright_and_right(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    stored = Image.new("RGB", (200, 100), (255, 0, 0))
    stored.paste((0, 0, 255), (100, 0, 200, 100))  # left red, right blue
    # (orientation, expected size, pixel, colour): 3 turns it 180°, 8 turns left becomes bottom.
    cases = {
        3: ((200, 100), (20, 50), (0, 0, 255)),
        8: ((100, 200), (50, 180), (255, 0, 0)),
    }
    ids = {}
    for index, orientation in enumerate(cases):
        exif = Image.Exif()
        exif[0x0112] = orientation
        ids[write_post(raw, index, image=jpeg_bytes(stored, exif=exif))] = orientation
    cmyk = Image.new("CMYK", (64, 64), (0, 0, 0, 0))  # white ink-free paper
    cmyk.paste((255, 0, 255, 0), (0, 0, 32, 64))  # cyan + yellow = green on the left half
    cmyk_id = write_post(raw, 5, image=jpeg_bytes(cmyk, quality=95))
    build(raw, out, tokenizer)
    rows = {row["id"]: row for row in manifest_rows(out)}
    for post_id, orientation in ids.items():
        size, pixel, colour = cases[orientation]
        assert (rows[post_id]["width"], rows[post_id]["height"]) == size
        with Image.open(out / rows[post_id]["image"]) as image:
            assert image.getpixel(pixel) == pytest.approx(colour, abs=40)
    with Image.open(out / rows[cmyk_id]["image"]) as image:
        assert image.mode == "RGB"
        assert image.getpixel((10, 32)) == pytest.approx((0, 255, 0), abs=40)
        assert image.getpixel((54, 32)) == pytest.approx((255, 255, 255), abs=40)


CAPTIONS = {
    "en": "Amazing afternoon at the foundation, the colours of this painting are unreal",
    "es": "Hoy hemos ido a ver la exposición con los peques, qué maravilla de colores",
    "ca": "Avui hem anat a veure l'exposició amb els petits, quina meravella de colors",
    "fr": "Aujourd'hui on est allés voir l'exposition avec les petits, quelles couleurs",
    "de": "Heute waren wir mit den Kindern in der Ausstellung, was für schöne Farben",
    "ja": "今日は子供たちと展覧会に行きました。色がとても美しかったです。また行きたい！",
    "it": "Oggi siamo andati a vedere la mostra con i bambini, che colori meravigliosi",
}


def test_languages_en_es_ca_fr_are_kept_and_others_dropped(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    ids = {
        write_post(raw, index, txt=text): code
        for index, (code, text) in enumerate(CAPTIONS.items())
    }
    report = build(raw, out, tokenizer)
    assert report.dropped == drops(report, wrong_language=3)
    assert by_id(out, "language") == {
        post_id: code for post_id, code in ids.items() if code in ("en", "es", "ca", "fr")
    }
    assert report.languages == {"ca": 1, "en": 1, "es": 1, "fr": 1}
    assert any("detected de" in example for example in report.examples["wrong_language"])

    everything = build(raw, tmp_path / "all", tokenizer, languages=None)
    assert everything.kept == len(CAPTIONS)
    assert set(by_id(tmp_path / "all", "language").values()) == {None}

    german = build(raw, tmp_path / "german", tokenizer, languages=["de"])
    assert by_id(tmp_path / "german", "language") == {
        post_id: "de" for post_id, code in ids.items() if code == "de"
    }
    assert german.dropped["wrong_language"] == len(CAPTIONS) - 1


def test_unknown_language_codes_and_bad_settings_name_the_key(tmp_path, tokenizer):
    write_post(tmp_path / "raw", 0)
    with pytest.raises(LanguageSettingsError, match="languages: lingua knows no language 'xx'"):
        build(tmp_path / "raw", tmp_path / "dataset", tokenizer, languages=["en", "xx"])
    with pytest.raises(BuildSettingsError, match="prolific_users must be one of"):
        build(tmp_path / "raw", tmp_path / "dataset", tokenizer, prolific_users="some")
    with pytest.raises(BuildSettingsError, match="max_posts_per_user must be >= 1"):
        build(tmp_path / "raw", tmp_path / "dataset", tokenizer, max_posts_per_user=0)
    with pytest.raises(BuildSettingsError, match="word_count must be one of"):
        build(tmp_path / "raw", tmp_path / "dataset", tokenizer, word_count="words")


def test_blacklisted_words_and_users_are_dropped_and_counted(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    kept = write_post(raw, 0)
    write_post(raw, 1, txt=GOOD_CAPTION + " #Giveaway")
    write_post(raw, 2, txt="Sorteo: una estrella roja sobre fondo azul, GIVEAWAY de láminas")
    write_post(raw, 3, owner="Spam_Prints")
    report = build(
        raw, out, tokenizer, blacklist_words=["giveaway"], blacklist_users=["@spam_prints"]
    )
    assert report.dropped == drops(report, blacklisted_word=2, blacklisted_user=1)
    assert read_manifest(out)["id"] == [kept]


def test_written_words_are_the_captions_words_as_the_papers_counted_them():
    assert written_words("molt bonic sol #miro") == ["molt", "bonic", "sol", "miro"]
    assert written_words("m'encanta negre escala #miro https://t.co/x1y2 @fundaciomiro") == [
        "m'encanta",
        "negre",
        "escala",
        "miro",
    ]
    assert written_words("L'ocell blau 🐦 2024!") == ["L'ocell", "blau"]
    assert written_words("🎨✨🔥 @fundaciomiro www.fmirobcn.org ...") == []
    assert len(written_words(CAPTIONS["ja"])) == 3  # a script without spaces: its sentences


# (caption, written words, content words): short captions that name what they show.
SHORT_CAPTIONS = [
    ("molt bonic sol #miro", 4, 2),
    ("m'encanta negre escala #miro https://t.co/x1y2", 4, 3),
    ("Quina lluna! #joanmiro #miro", 4, 2),
]


def test_short_captions_naming_the_picture_are_kept_and_too_short_ones_dropped(
    tmp_path, cfg, tokenizer
):
    assert (cfg.min_words, cfg.word_count) == (3, "written")  # the CLI's default
    raw = tmp_path / "raw"
    named = [write_post(raw, index, txt=text) for index, (text, *_) in enumerate(SHORT_CAPTIONS)]
    write_post(raw, 3, txt="l'ocell blau")  # two written words
    write_post(raw, 4, txt="🎨✨🔥 @fundaciomiro")  # emojis and a mention: no word
    write_post(raw, 5, txt="   ")
    for text, written, content in SHORT_CAPTIONS:
        assert (len(written_words(text)), len(tokenizer(text))) == (written, content)

    report = build(raw, tmp_path / "written", tokenizer)  # build_dataset's default: written

    assert report.dropped == drops(report, no_caption=1, too_few_words=2)
    assert by_id(tmp_path / "written", "language") == dict.fromkeys(named, "ca")
    notes = sorted(example.split(" <- ")[1] for example in report.examples["too_few_words"])
    assert notes == ["0 written words < 3", "2 written words < 3"]

    # The old count, after stopwords and the tokenizer's blacklist, is one setting away.
    content = build(raw, tmp_path / "content", tokenizer, word_count="content")
    assert content.dropped == drops(content, no_caption=1, too_few_words=4)
    assert read_manifest(tmp_path / "content")["id"] == [named[1]]
    assert "2 content words < 3" in content.examples["too_few_words"][0]


def test_a_changed_word_count_re_decides_an_incremental_build(tmp_path, tokenizer):
    raw, out, cold = tmp_path / "raw", tmp_path / "dataset", tmp_path / "cold"
    long = [write_post(raw, index, image=noise((64, 48), seed=index)) for index in range(3)]
    photo = smooth((320, 240), seed=5)
    short = write_post(raw, 3, txt=SHORT_CAPTIONS[0][0], image=png_bytes(photo))
    # A later post of the same picture: kept while the short one is dropped, then its copy.
    later_copy = write_post(raw, 4, image=png_bytes(photo, compress_level=1))

    first = build(raw, out, tokenizer, word_count="content")
    assert first.dropped == drops(first, too_few_words=1)
    content_manifest = read_manifest(out, EVERY_COLUMN)
    assert content_manifest["id"] == sorted([*long, later_copy])

    written = build(raw, out, tokenizer, word_count="written")  # the same dataset dir
    assert written.work == {"posts_read": 0, "captions_detected": 1, "images_processed": 1}
    assert written.dropped == drops(written, exact_duplicate=1)
    assert read_manifest(out)["id"] == sorted([*long, short])
    build(raw, cold, tokenizer, word_count="written")
    assert read_manifest(out, EVERY_COLUMN) == read_manifest(cold, EVERY_COLUMN)  # as if so built

    back = build(raw, out, tokenizer, word_count="content")
    assert back.work == {"posts_read": 0, "captions_detected": 0, "images_processed": 0}
    assert back.dropped == first.dropped
    assert read_manifest(out, EVERY_COLUMN) == content_manifest


@pytest.mark.parametrize(
    ("policy", "kept_of_prolific"), [("drop", 0), ("keep_first", 2)], ids=["drop", "keep_first"]
)
def test_prolific_users_are_capped(tmp_path, tokenizer, policy, kept_of_prolific):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    prolific = [write_post(raw, index, owner="fundaciomiro") for index in range(3)]
    casual = [write_post(raw, index, owner=f"visitor{index}") for index in range(3, 5)]
    ownerless = write_post(raw, 5, metadata=False)
    report = build(raw, out, tokenizer, max_posts_per_user=2, prolific_users=policy)
    assert report.dropped == drops(report, prolific_user=3 - kept_of_prolific)
    expected = prolific[:kept_of_prolific] + casual + [ownerless]
    assert read_manifest(out)["id"] == sorted(expected)
    uncapped = build(raw, tmp_path / "uncapped", tokenizer)  # the default: no cap
    assert uncapped.kept == 6


def test_exact_duplicates_same_pixels_in_other_bytes_are_dropped(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    picture = smooth((320, 240), seed=1)
    original = write_post(raw, 0, image=png_bytes(picture, compress_level=9))
    write_post(raw, 1, image=png_bytes(picture, compress_level=1))  # other bytes, same pixels
    write_post(raw, 2, image=png_bytes(picture, compress_level=9))  # the very same file
    other = write_post(raw, 3, image=png_bytes(smooth((320, 240), seed=2)))
    report = build(raw, out, tokenizer)
    assert report.dropped == drops(report, exact_duplicate=2)
    assert read_manifest(out)["id"] == sorted([original, other])
    assert f"copy of {raw / stem_at(0)}" in report.examples["exact_duplicate"][0]
    assert (
        build(
            raw, tmp_path / "all", tokenizer, exact_duplicates=False, near_duplicate_distance=None
        ).kept
        == 4
    )


def test_near_duplicates_are_caught_and_lookalikes_are_not(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    photo = smooth((640, 480), seed=3)
    original = write_post(raw, 0, image=jpeg_bytes(photo, quality=92))
    write_post(raw, 1, image=jpeg_bytes(photo.resize((400, 300)), quality=60))  # a repost
    write_post(raw, 2, image=png_bytes(photo.resize((1000, 750))))  # upscaled, re-saved
    different = write_post(raw, 3, image=jpeg_bytes(smooth((640, 480), seed=5)))
    # The same background with a red or a blue disc: pHash within 2 bits, thumbnails far apart.
    red = write_post(raw, 4, image=jpeg_bytes(disc_on_background((200, 60, 60))))
    blue = write_post(raw, 5, image=jpeg_bytes(disc_on_background((60, 90, 255))))

    report = build(raw, out, tokenizer)

    assert report.dropped == drops(report, near_duplicate=2)
    assert read_manifest(out)["id"] == sorted([original, different, red, blue])
    phash_alone = build(raw, tmp_path / "phash_alone", tokenizer, near_duplicate_rms=None)
    assert phash_alone.dropped["near_duplicate"] == 3  # the blue disc goes too
    off = build(raw, tmp_path / "off", tokenizer, near_duplicate_distance=None)
    assert off.kept == 6


def test_hamming_index_finds_exactly_the_codes_within_the_radius():
    rng = np.random.default_rng(0)
    codes = [int(code) for code in rng.integers(0, 2**63, size=400, dtype=np.int64)]
    # Plant neighbours at known distances from the first code.
    for bits in (1, 3, 5, 8, 9, 12):
        flips = rng.choice(64, size=bits, replace=False)
        codes.append(codes[0] ^ sum(1 << int(bit) for bit in flips))
    index = HammingIndex(radius=8)
    index.add(range(200), codes[:200])
    for key, code in enumerate(codes[200:], start=200):
        index.add([key], [code])
    for query in (codes[0], codes[7], codes[-1]):
        expected = [(key, (query ^ code).bit_count()) for key, code in enumerate(codes)]
        assert index.near(query) == [(key, d) for key, d in expected if d <= 8]
    assert HammingIndex(radius=0).near(codes[0]) == []  # empty


def state_rows(out: Path) -> dict[str, tuple]:
    with sqlite3.connect(out / STATE_FILE) as connection:
        rows = connection.execute("SELECT key, seq, dedupe FROM posts")
        return {key: (seq, dedupe) for key, seq, dedupe in rows}


def test_incremental_build_processes_only_new_posts_and_keeps_old_decisions(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    photo = smooth((480, 360), seed=7)
    old_photo = write_post(raw / "#miro", 10, image=jpeg_bytes(photo))
    write_post(raw / "#miro", 11, image=jpeg_bytes(photo.resize((360, 270)), quality=70))
    for index in range(12, 20):
        write_post(raw / "#miro", index, image=noise((64, 48), seed=index))
    write_post(raw / "#miro", 20, txt="Ein roter Stern auf blauem Grund, Vogel und Mond")
    first = build(raw, out, tokenizer)
    assert first.work == {"posts_read": 11, "captions_detected": 11, "images_processed": 10}
    assert first.dropped == drops(first, near_duplicate=1, wrong_language=1)
    splits_before, state_before = by_id(out, "split"), state_rows(out)

    # New posts arrive, one dated before every old post: a copy of the old kept photo.
    earlier_copy = write_post(raw / "#joanmiro", 0, image=jpeg_bytes(photo, quality=50))
    new = [
        write_post(raw / "#joanmiro", index, image=noise((64, 48), seed=index))
        for index in range(30, 33)
    ]
    write_post(raw / "#joanmiro", 33, txt="Hi")
    second = build(raw, out, tokenizer)

    assert second.work == {"posts_read": 5, "captions_detected": 4, "images_processed": 4}
    assert second.dropped == drops(second, near_duplicate=2, wrong_language=1, too_few_words=1)
    after = by_id(out, "split")
    assert old_photo in after and earlier_copy not in after  # the old post stays, the new copy goes
    assert {post_id: after[post_id] for post_id in splits_before} == splits_before
    assert sorted(after) == sorted([*splits_before, *new])
    state_after = state_rows(out)
    assert {key: state_after[key] for key in state_before} == state_before
    assert min(seq for key, (seq, _) in state_after.items() if key.startswith("#joanmiro")) > max(
        seq for seq, _ in state_before.values()
    )

    unchanged = build(raw, out, tokenizer)
    assert unchanged.work == {"posts_read": 0, "captions_detected": 0, "images_processed": 0}
    assert unchanged.dropped == second.dropped and by_id(out, "split") == after


def test_a_new_signature_version_re_hashes_the_cached_images(tmp_path, tokenizer, monkeypatch):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    for index in range(3):
        write_post(raw, index, image=smooth((320, 240), seed=index))
    build(raw, out, tokenizer)
    files = sorted((out / "images").rglob("*.jpg"))
    monkeypatch.setattr(image_cache, "SIGNATURE_VERSION", dedupe.SIGNATURE_VERSION + 1)
    monkeypatch.setattr(image_cache, "perceptual_hash", lambda image: 0)

    again = build(raw, out, tokenizer, near_duplicate_rms=None)

    assert again.work["images_processed"] == 3  # re-hashed from the cached files...
    assert sorted((out / "images").rglob("*.jpg")) == files  # ...which stay as they were
    assert again.dropped["near_duplicate"] == 2  # every stored hash is the new one


def test_changed_or_removed_posts_are_redone(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    ids = [write_post(raw, index, image=noise((64, 48), seed=index)) for index in range(4)]
    build(raw, out, tokenizer)
    (raw / f"{stem_at(1)}.txt").write_text("Hi\n")  # edited caption
    for path in raw.glob(f"{stem_at(2)}*"):
        path.unlink()
    report = build(raw, out, tokenizer)
    assert report.work["posts_read"] == 1 and report.seen == 3
    assert report.dropped == drops(report, too_few_words=1)
    assert read_manifest(out)["id"] == [ids[0], ids[3]]


def test_parallel_build_equals_serial_build(tmp_path, tokenizer):
    raw = tmp_path / "raw"
    photo = smooth((500, 400), seed=11)
    for index in range(10):
        write_post(raw, index, image=jpeg_bytes(noise((300, 220), seed=index), quality=85))
    write_post(raw, 10, image=jpeg_bytes(photo))
    write_post(raw, 11, image=jpeg_bytes(photo.resize((250, 200)), quality=60))
    write_post(raw, 12, image=b"broken")
    serial = build(raw, tmp_path / "serial", tokenizer, workers=0)
    parallel = build(raw, tmp_path / "parallel", tokenizer, workers=2)
    assert serial.dropped == parallel.dropped == drops(serial, near_duplicate=1, image_unreadable=1)
    serial = read_manifest(tmp_path / "serial", EVERY_COLUMN)
    assert serial == read_manifest(tmp_path / "parallel", EVERY_COLUMN)
    with sqlite3.connect(tmp_path / "serial" / STATE_FILE) as connection:
        serial_state = sorted(connection.execute("SELECT key, image, dedupe FROM posts"))
    with sqlite3.connect(tmp_path / "parallel" / STATE_FILE) as connection:
        assert sorted(connection.execute("SELECT key, image, dedupe FROM posts")) == serial_state
    for relative in serial["image"]:
        assert (tmp_path / "serial" / relative).read_bytes() == (
            tmp_path / "parallel" / relative
        ).read_bytes()


def test_open_image_guards_and_draft_decoding():
    big = smooth((1600, 1200), seed=2)
    data = jpeg_bytes(big, quality=95)
    drafted = open_image(data, draft_short_side=256)
    assert drafted.size == (400, 300)  # 1/4 scale keeps the short side >= 256
    full = open_image(data)
    assert full.size == (1600, 1200)
    reference = np.asarray(full.resize((400, 300), Image.Resampling.LANCZOS), dtype=float)
    assert np.abs(np.asarray(drafted, dtype=float) - reference).mean() < 3
    with pytest.raises(ImageTooLarge):
        open_image(data, max_pixels=1_000_000)
    with pytest.raises(UnreadableImage):
        open_image(data[: len(data) // 2])
    with pytest.raises(UnreadableImage):
        open_image(b"")


def test_the_configs_settings_are_build_settings_defaults_and_typed(cfg):
    assert read_settings(cfg) == BuildSettings()  # conf/build.yaml and the dataclass agree

    def compose_settings(*overrides: str) -> BuildSettings:
        with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
            return read_settings(compose("build", overrides=["raw=r", "out=o", *overrides]))

    settings = compose_settings("near_duplicate_rms=4", "languages=null", "splits.val=0.2")
    assert settings.near_duplicate_rms == 4.0 and settings.languages is None
    assert settings.splits == {"train": 0.8, "val": 0.2, "test": 0.1}
    with pytest.raises(BuildSettingsError, match="unknown build setting near_duplicates;"):
        compose_settings("+near_duplicates=4")
    with pytest.raises(BuildSettingsError, match=r"build setting splits\.val: Value 'much'"):
        compose_settings("splits.val=much")


def test_cli_builds_and_prints_the_counts(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    for index in range(4):
        write_post(raw / "#joanmiro", index)
    write_post(raw / "#miro", 4, txt="#miro")
    write_post(raw / "#miro", 5, txt=SHORT_CAPTIONS[0][0])  # 4 written words, 2 content words

    result = run_module("data_pipeline.build", f"raw={raw}", f"out={out}")

    assert result.returncode == 0, result.stderr
    assert re.search(r"^posts seen +6$", result.stdout, re.MULTILINE)
    assert re.search(r"^kept +5$", result.stdout, re.MULTILINE)
    assert re.search(r"^  too_few_words +1$", result.stdout, re.MULTILINE)
    assert str(out) in result.stdout
    assert len(read_manifest(out)["id"]) == 5
    resolved = OmegaConf.load(out / ".hydra" / "config.yaml")
    assert resolved.raw == str(raw) and resolved.workers is None

    # The old count is one override away.
    content = tmp_path / "content"
    result = run_module("data_pipeline.build", f"raw={raw}", f"out={content}", "word_count=content")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^  too_few_words +2$", result.stdout, re.MULTILINE)
    assert len(read_manifest(content)["id"]) == 4


def test_cli_missing_raw_folder_exits_nonzero_naming_it(tmp_path):
    missing = tmp_path / "no_such_raw"
    result = run_module("data_pipeline.build", f"raw={missing}", f"out={tmp_path / 'dataset'}")
    assert result.returncode != 0
    assert str(missing) in result.stderr
    assert "data_pipeline.synthetic" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_paths_are_relative_to_the_callers_cwd_and_out_is_required(tmp_path):
    write_post(tmp_path / "raw", 0)
    result = run_module("data_pipeline.build", "raw=raw", "out=dataset", "workers=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(read_manifest(tmp_path / "dataset")["id"]) == 1

    result = run_module("data_pipeline.build", "raw=raw", cwd=tmp_path)
    assert result.returncode != 0
    assert "missing out" in result.stderr and "Traceback" not in result.stderr


def test_cli_names_a_bad_setting_without_a_traceback(tmp_path):
    write_post(tmp_path / "raw", 0)
    result = run_module(
        "data_pipeline.build", "raw=raw", "out=dataset", "+max_post_per_user=20", cwd=tmp_path
    )
    assert result.returncode != 0
    assert "error: unknown build setting max_post_per_user; see conf/build.yaml" in result.stderr
    result = run_module(
        "data_pipeline.build", "raw=raw", "out=dataset", "min_words=many", cwd=tmp_path
    )
    assert result.returncode != 0
    assert "error: build setting min_words: Value 'many'" in result.stderr
    result = run_module(
        "data_pipeline.build", "raw=raw", "out=dataset", "prolific_users=some", cwd=tmp_path
    )
    assert result.returncode != 0 and "prolific_users must be one of" in result.stderr
    assert "Traceback" not in result.stderr
