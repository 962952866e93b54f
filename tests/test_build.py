"""The dataset build stage: raw instaloader posts → manifest.parquet + image cache + report."""

import io
import json
import lzma
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import instaloader
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from data_pipeline.dataset import build_dataset
from data_pipeline.manifest import MANIFEST_SCHEMA
from data_pipeline.raw import RawFolderError
from data_pipeline.splits import SplitFractionsError, assign_split

REPO = Path(__file__).resolve().parents[1]
CONTEXT = instaloader.Instaloader(quiet=True).context
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
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
    options = {"min_words": 3, "num_workers": 0, "progress": False} | overrides
    return build_dataset(raw, out, tokenizer, **options)


def read_manifest(out: Path) -> pa.Table:
    return pq.read_table(out / "manifest.parquet")


def by_id(out: Path, column: str) -> dict:
    return {row["id"]: row[column] for row in read_manifest(out).to_pylist()}


def stem_at(index: int) -> str:
    return (START + timedelta(minutes=index)).strftime("%Y-%m-%d_%H-%M-%S_UTC")


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def jpeg_bytes(image: Image.Image, **save_options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **save_options)
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
    (raw / "ground_truth.jsonl").write_text('{"id": 1}\n')
    (raw / f"{stem_at(0)}_comments.json").write_text("[]")

    report = build(raw.parent, out, tokenizer)

    assert report.seen == 10
    assert report.kept == 4
    assert report.dropped == {
        "duplicate_id": 0,
        "no_caption": 2,
        "too_few_words": 2,
        "image_unreadable": 2,
    }
    assert report.seen == report.kept + sum(report.dropped.values())
    table = read_manifest(out)
    assert table.column("id").to_pylist() == sorted([*good, only_json])
    captions = by_id(out, "caption")
    assert captions[only_json] == "Pintura con estrellas y pájaros azules"
    assert captions[good[0]] == GOOD_CAPTION
    for relative in table.column("image").to_pylist():
        with Image.open(out / relative) as image:
            image.load()
            assert image.mode == "RGB"
            assert image.size == (341, 256)
    written = json.loads((out / "report.json").read_text())
    assert written["dropped"] == report.dropped
    assert written["splits"] == report.splits
    assert sum(report.splits.values()) == 4


def test_manifest_columns_types_and_values(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    shortcode = write_post(raw, 0, txt="Mujer, pájaro y ESTRELLA #JoanMiro #Pintura #joanmiro")
    stem_id = write_post(raw, 1, metadata=False)
    # instaloader would fetch a missing owner name from Instagram; the build must not.
    ownerless = write_post(raw, 2, owner=None)

    build(raw, out, tokenizer)

    table = read_manifest(out)
    assert table.schema.remove_metadata() == MANIFEST_SCHEMA
    assert table.column_names == [
        *("id", "split", "caption", "owner", "date", "hashtags"),
        *("image", "source", "width", "height"),
    ]
    rows = {row["id"]: row for row in table.to_pylist()}
    assert sorted(rows) == table.column("id").to_pylist() == sorted([shortcode, stem_id, ownerless])
    assert rows[ownerless]["owner"] is None
    full = rows[shortcode]
    assert full["owner"] == "miro_fan"
    assert full["date"] == START
    assert full["hashtags"] == ["joanmiro", "pintura"]
    assert full["split"] in {"train", "val", "test"}
    assert full["image"].startswith("images/") and (out / full["image"]).is_file()
    assert full["source"] == str((raw / f"{stem_at(0)}.jpg").resolve())
    without_metadata = rows[stem_id]
    assert without_metadata["owner"] is None
    assert without_metadata["date"] == START + timedelta(minutes=1)  # read from the file stem


def test_images_are_resized_to_the_short_side_and_never_upscaled(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    sizes = {
        write_post(raw, 0, image=noise((640, 480))): (341, 256),
        write_post(raw, 1, image=noise((1000, 2400))): (256, 614),  # decoded in draft mode
        write_post(raw, 2, image=noise((200, 150))): (200, 150),
    }
    build(raw, out, tokenizer)
    for row in read_manifest(out).to_pylist():
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
    report = build(raw, out, tokenizer)
    assert report.kept == 5
    for row in read_manifest(out).to_pylist():
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
    row = read_manifest(out).to_pylist()[0]
    assert (row["width"], row["height"]) == (100, 200)
    with Image.open(out / row["image"]) as image:
        assert image.getpixel((50, 20)) == pytest.approx((255, 0, 0), abs=30)
        assert image.getpixel((50, 180)) == pytest.approx((0, 0, 255), abs=30)


def test_decompression_bombs_are_dropped(tmp_path, tokenizer):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    small = write_post(raw, 0, image=noise((100, 100)))
    write_post(raw, 1, image=noise((400, 400)))
    report = build(raw, out, tokenizer, max_image_pixels=50_000)
    assert report.dropped["image_unreadable"] == 1
    assert read_manifest(out).column("id").to_pylist() == [small]


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
    build(raw, out, tokenizer, num_workers=2)
    first = read_manifest(out)
    cached = sorted((out / "images").rglob("*.jpg"))
    assert len(cached) == 6
    for path in cached:
        os.utime(path, ns=(10**18, 10**18))
    inodes = [path.stat().st_ino for path in cached]

    build(raw, out, tokenizer, num_workers=2)

    assert read_manifest(out).equals(first)
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
    rows = {row["id"]: row for row in read_manifest(out).to_pylist()}
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
    assert read_manifest(out).column("id").to_pylist() == [stem_at(0), stem_at(1)]


def test_missing_or_empty_raw_folder_is_a_clear_error(tmp_path, tokenizer):
    with pytest.raises(RawFolderError, match="does not exist"):
        build(tmp_path / "nowhere", tmp_path / "dataset", tokenizer)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RawFolderError, match="no instaloader posts"):
        build(tmp_path / "empty", tmp_path / "dataset", tokenizer)


def run_cli(*overrides: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "data_pipeline.build", *overrides]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_builds_and_prints_the_counts(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    for index in range(4):
        write_post(raw / "#joanmiro", index)
    write_post(raw / "#miro", 4, txt="#miro")

    result = run_cli(f"raw={raw}", f"out={out}")

    assert result.returncode == 0, result.stderr
    assert re.search(r"^posts seen +5$", result.stdout, re.MULTILINE)
    assert re.search(r"^kept +4$", result.stdout, re.MULTILINE)
    assert re.search(r"^  too_few_words +1$", result.stdout, re.MULTILINE)
    assert str(out) in result.stdout
    assert read_manifest(out).num_rows == 4
    resolved = OmegaConf.load(out / ".hydra" / "config.yaml")
    assert resolved.raw == str(raw) and resolved.num_workers == 2


def test_cli_missing_raw_folder_exits_nonzero_naming_it(tmp_path):
    missing = tmp_path / "no_such_raw"
    result = run_cli(f"raw={missing}", f"out={tmp_path / 'dataset'}")
    assert result.returncode != 0
    assert str(missing) in result.stderr
    assert "data_pipeline.synthetic" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_paths_are_relative_to_the_callers_cwd_and_out_is_required(tmp_path):
    write_post(tmp_path / "raw", 0)
    result = run_cli("raw=raw", "out=dataset", "num_workers=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_manifest(tmp_path / "dataset").num_rows == 1

    result = run_cli("raw=raw", cwd=tmp_path)
    assert result.returncode != 0
    assert "missing out" in result.stderr and "Traceback" not in result.stderr
