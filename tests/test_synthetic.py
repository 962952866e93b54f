"""The synthetic generator writes instaloader-readable, deterministic, well-labelled posts."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import instaloader
import numpy as np
import pytest
from PIL import Image

from data_pipeline.synthetic import (
    BACKGROUNDS,
    GROUND_TRUTH,
    LANGUAGES,
    MOTIFS,
    PALETTE,
    GeneratorSettings,
    generate_posts,
    motif_vocabulary,
)
from data_pipeline.synthetic.captions import misspell

REPO = Path(__file__).resolve().parents[1]
NUM_POSTS = 240
STEM = re.compile(r"^\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_UTC$")
SHORTCODE = re.compile(r"^[A-Za-z0-9_-]{11}$")
WORD = re.compile(r"\w+")
FIELDS = ("shortcode", "motifs", "colours", "background", "language", "caption_mentions_image")
NOISE = re.compile(r"https?://\S+|[#@][\w.]+")


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    generate_posts(out, NUM_POSTS, seed=0)
    return out


@pytest.fixture(scope="module")
def posts(raw: Path) -> dict[str, instaloader.Post]:
    """Every post as real instaloader loads it back, by file stem."""
    context = instaloader.Instaloader(quiet=True).context
    return {
        path.name.removesuffix(".json.xz"): instaloader.load_structure_from_file(context, str(path))
        for path in sorted(raw.glob("*.json.xz"))
    }


@pytest.fixture(scope="module")
def truth(raw: Path) -> list[dict]:
    return [json.loads(line) for line in (raw / GROUND_TRUTH).read_text().splitlines()]


def _digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def _words(caption: str) -> set[str]:
    return set(WORD.findall(NOISE.sub(" ", caption.lower())))


def test_same_seed_gives_byte_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        generate_posts(tmp_path / name, 25, seed=seed)
    first, again, other = (_digest(tmp_path / name) for name in "abc")
    assert len(first) == 3 * 25 + 1
    assert {Path(n).suffix for n in first} == {".jpg", ".txt", ".xz", ".jsonl"}
    assert first == again
    assert set(first) != set(other)
    assert not set(first.values()) & set(other.values())


def test_instaloader_loads_every_post_back(raw: Path, posts: dict[str, instaloader.Post]) -> None:
    assert len(posts) == NUM_POSTS
    assert sorted(p.stem for p in raw.glob("*.jpg")) == sorted(posts)
    for stem, post in posts.items():
        assert isinstance(post, instaloader.Post)
        assert STEM.match(stem)
        assert stem == f"{post.date_utc:%Y-%m-%d_%H-%M-%S}_UTC"
        assert 2015 <= post.date_utc.year <= 2024
        caption_file = (raw / f"{stem}.txt").read_text(encoding="utf-8")
        assert caption_file == post.caption + "\n"  # what Instaloader.save_caption writes
        assert post.caption_hashtags == re.findall(r"#(\w+)", caption_file.lower())
        assert SHORTCODE.match(post.shortcode)
        assert post.mediaid == instaloader.Post.shortcode_to_mediaid(post.shortcode)
        assert re.fullmatch(r"[a-z0-9._]{3,30}", post.owner_username)
        assert post.owner_id.isdigit()
        assert post.typename == "GraphImage" and not post.is_video
    assert len({p.shortcode for p in posts.values()}) == NUM_POSTS
    assert any(p.caption_hashtags for p in posts.values())


def test_loaded_posts_need_no_network(
    posts: dict[str, instaloader.Post], monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(self: instaloader.Post) -> None:
        raise AssertionError(f"{self} tried to fetch metadata from Instagram")

    monkeypatch.setattr(instaloader.Post, "_obtain_metadata", offline)
    post = next(iter(posts.values()))
    assert post.likes >= 0 and post.comments >= 0
    assert post.location is None and post.tagged_users == [] and not post.is_sponsored
    assert post.accessibility_caption is None and post.title is None
    assert post.url.startswith("https://")


def test_owners_are_a_skewed_pool(posts: dict[str, instaloader.Post]) -> None:
    counts = Counter(p.owner_username for p in posts.values())
    assert len(counts) >= 20
    assert counts.most_common(1)[0][1] >= 0.1 * NUM_POSTS
    assert sum(c == 1 for c in counts.values()) >= 5


def test_ground_truth_labels(truth: list[dict], posts: dict[str, instaloader.Post]) -> None:
    assert len(truth) == NUM_POSTS
    assert [r["shortcode"] for r in truth] == sorted(p.shortcode for p in posts.values())
    for row in truth:
        assert set(row) == {*FIELDS}
        assert 1 <= len(row["motifs"]) <= 3
        assert row["motifs"] == sorted(set(row["motifs"])) and set(row["motifs"]) <= set(MOTIFS)
        assert row["colours"] == sorted(set(row["colours"])) and set(row["colours"]) <= set(PALETTE)
        assert row["background"] in BACKGROUNDS
    share = Counter(m for row in truth for m in row["motifs"])
    for motif in MOTIFS:
        assert 0.12 <= share[motif] / NUM_POSTS <= 0.4, (motif, share[motif])
    assert {row["language"] for row in truth} == set(LANGUAGES)
    unrelated = sum(not row["caption_mentions_image"] for row in truth)
    assert unrelated == round(GeneratorSettings().unrelated_fraction * NUM_POSTS)


def test_captions_name_their_motifs_unless_unrelated(
    truth: list[dict], posts: dict[str, instaloader.Post]
) -> None:
    vocabulary = motif_vocabulary()
    assert {"star", "estrella", "estel", "étoile", "lluna", "soleil", "œil"} <= set().union(
        *vocabulary.values()
    )
    captions = {p.shortcode: p.caption for p in posts.values()}
    named = 0
    related = [row for row in truth if row["caption_mentions_image"]]
    for row in truth:
        words = _words(captions[row["shortcode"]])
        if row["caption_mentions_image"]:
            named += any(words & vocabulary[m] for m in row["motifs"])
        else:
            assert not words & set().union(*vocabulary.values()), captions[row["shortcode"]]
            assert len([w for w in words if w.isalpha()]) >= 3
    assert named >= 0.85 * len(related)
    english_star = sum("star" in _words(c) or "stars" in _words(c) for c in captions.values())
    assert english_star >= 3


def test_images_are_rgb_jpegs_with_motifs(raw: Path, posts: dict[str, instaloader.Post]) -> None:
    settings = GeneratorSettings()
    for stem in list(posts)[:40]:
        with Image.open(raw / f"{stem}.jpg") as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert settings.min_size <= image.width <= settings.max_size
            assert settings.min_size <= image.height <= settings.max_size
            pixels = np.asarray(image.convert("L"), dtype=float)
        node = posts[stem]._node["dimensions"]
        assert (node["width"], node["height"]) == pixels.shape[::-1]
        ink = (pixels < 70).mean()  # every motif has black contours or parts
        assert ink > 0.003 and pixels.std() > 10, stem


def test_rerun_replaces_synthetic_posts_but_never_a_real_scrape(tmp_path: Path) -> None:
    generate_posts(tmp_path / "syn", 6, seed=1)
    generate_posts(tmp_path / "syn", 4, seed=2)
    assert len(list((tmp_path / "syn").glob("*_UTC.jpg"))) == 4
    scrape = tmp_path / "scrape"
    scrape.mkdir()
    (scrape / "2020-01-01_00-00-00_UTC.jpg").write_bytes(b"real")
    with pytest.raises(FileExistsError, match="real scrape"):
        generate_posts(scrape, 4, seed=0)
    assert (scrape / "2020-01-01_00-00-00_UTC.jpg").read_bytes() == b"real"


def test_bad_settings_name_the_key() -> None:
    with pytest.raises(ValueError, match="languages"):
        GeneratorSettings(languages={"de": 1.0})
    with pytest.raises(ValueError, match="min_size"):
        GeneratorSettings(min_size=500, max_size=300)


def test_misspelling_is_one_small_edit() -> None:
    rng = np.random.default_rng(0)
    for word in ("estrella", "spiral", "échelle", "ojo"):
        typo = misspell(word, rng)
        assert typo != word
        assert len(word) - 1 <= len(typo) <= len(word)
        assert sorted(typo) == sorted(word) or len(typo) == len(word) - 1


def test_cli_writes_posts_and_names_the_output_dir(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    run = subprocess.run(
        [sys.executable, "-m", "data_pipeline.synthetic", f"out={out}", "num_posts=20", "seed=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert str(out) in run.stdout and GROUND_TRUTH in run.stdout
    for suffix in (".jpg", ".txt", ".json.xz"):
        assert len(list(out.glob(f"*_UTC{suffix}"))) == 20
    assert len((out / GROUND_TRUTH).read_text().splitlines()) == 20
    extra = {p.name for p in out.iterdir()} - {p.name for p in out.glob("*_UTC.*")}
    assert extra == {GROUND_TRUTH}  # no .hydra/ dir or log file among the posts


def test_cli_without_out_says_what_is_missing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "data_pipeline.synthetic", "num_posts=3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "out=" in run.stderr + run.stdout
