"""The linear probe (`python -m miro.evaluate probe=DIR`): a labelled folder of synthetic Miró
motifs, split and probed with the frozen features of an encoder trained on the synthetic
world, beside a random-init encoder and chance."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import LEARNABLE_ENCODER, run_module
from torchvision.models import GoogLeNet

from data_pipeline.synthetic.labelled import write_labelled_folder
from miro.models.checkpoints import load_encoder
from miro.retrieval.labelled import ProbeError, probe_split
from miro.retrieval.probe import ProbeSettings, baselines, probe_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLASSES = ("ladder", "moon", "spiral", "star")
# The probe reads images at the size the encoder was trained at.
TRAINED_SIZE = int(dict(o.split("=") for o in LEARNABLE_ENCODER)["data.image_size"])


@pytest.fixture(scope="module")
def motifs(tmp_path_factory) -> Path:
    """4 motifs × 60 images at 64 px, and one corrupt file in the star folder."""
    folder = write_labelled_folder(tmp_path_factory.mktemp("probe") / "motifs", classes=CLASSES)
    (folder / "star" / "broken.jpg").write_bytes(b"not an image")
    return folder


def test_the_split_is_stratified_and_fixed_by_its_seed(motifs, tmp_path):
    split = probe_split(motifs, test_fraction=0.3, seed=0)
    assert split.train.classes == list(CLASSES)
    assert np.bincount(split.test.labels).tolist() == [18, 18, 18, 18]  # 61 stars: round(18.3)
    assert len(split.train.paths) + len(split.test.paths) == 241
    assert not set(split.train.paths) & set(split.test.paths)
    assert probe_split(motifs, seed=0).test.paths == split.test.paths
    assert probe_split(motifs, seed=1).test.paths != split.test.paths

    for half, motif in (("train", "star"), ("train", "moon"), ("test", "star")):
        (tmp_path / half / motif).mkdir(parents=True)
        for i in range(2):
            (tmp_path / half / motif / f"{i}.jpg").write_bytes(b"")
    given = probe_split(tmp_path)
    assert given.how == "the folder's train/ and test/"
    assert given.train.classes == ["moon", "star"] and given.test.labels.tolist() == [1, 1]


def test_bad_folders_name_the_fix(tmp_path):
    with pytest.raises(ProbeError, match="no such folder"):
        probe_split(tmp_path / "nowhere")
    (tmp_path / "star").mkdir()
    (tmp_path / "star" / "a.jpg").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProbeError, match=r"1 class folder\(s\) with images \(star\).*at least 2"):
        probe_split(tmp_path)
    (tmp_path / "moon").mkdir()
    (tmp_path / "moon" / "a.jpg").write_bytes(b"")
    with pytest.raises(ProbeError, match=r"class 'moon' .* has 1 image"):
        probe_split(tmp_path)
    (tmp_path / "train").mkdir()
    with pytest.raises(ProbeError, match="only one of train/ and test/"):
        probe_split(tmp_path)
    with pytest.raises(ProbeError, match="test_fraction"):
        ProbeSettings(test_fraction=1.0)


def test_unreadable_folders_are_refused(encoder_checkpoint, tmp_path):
    for motif in ("star", "moon"):
        (tmp_path / motif).mkdir()
        for i in range(3):
            (tmp_path / motif / f"{i}.jpg").write_bytes(b"not an image")
    settings = ProbeSettings(random_init=False, imagenet=False)
    with pytest.raises(ProbeError, match="no readable image"):
        probe_checkpoint(encoder_checkpoint[0], probe_split(tmp_path), settings, 32, num_workers=0)


def test_baselines_the_same_seed_gives_the_same_random_encoder(encoder_checkpoint, tmp_path):
    trained = load_encoder(encoder_checkpoint[0]).encoder
    missing = ProbeSettings(imagenet_weights=str(tmp_path / "googlenet.pth"))
    first, skipped = baselines(trained, missing)
    again, _ = baselines(trained, missing)
    other, _ = baselines(trained, ProbeSettings(seed=1, imagenet=False))
    weight = "net.inception4c.branch1.conv.weight"
    random = first["random_init"][0].state_dict()[weight]
    assert torch.equal(random, again["random_init"][0].state_dict()[weight])
    assert not torch.equal(random, other["random_init"][0].state_dict()[weight])
    assert "imagenet" not in first and "googlenet.pth does not exist" in skipped["imagenet"]

    torch.save(GoogLeNet(aux_logits=True, init_weights=True).state_dict(), missing.imagenet_weights)
    found, skipped = baselines(trained, missing)
    assert found["imagenet"][1] == missing.imagenet_weights and not skipped
    assert found["imagenet"][0].net.transform_input  # torchvision's ImageNet input scaling


@pytest.mark.slow
def test_trained_features_beat_random_ones(trained_encoder, motifs, tmp_path):
    """The encoder that learned the synthetic world from captions separates its motifs better
    than the network it started from (same architecture, GoogLeNet's init)."""
    settings = ProbeSettings(test_fraction=0.5, imagenet=False)
    split = probe_split(motifs, settings.test_fraction, settings.seed)
    report = probe_checkpoint(trained_encoder, split, settings, num_workers=0, progress=False)
    trained, random = report.scores["trained"], report.scores["random_init"]
    print(report.table())
    assert report.image_size == TRAINED_SIZE and sum(report.test_images.values()) == 120
    assert list(report.unreadable) == [str(motifs / "star" / "broken.jpg")]
    assert report.chance == pytest.approx(0.25, abs=0.01)
    # Measured 0.68 against 0.41 (chance 0.25).
    assert trained["accuracy"] >= random["accuracy"] + 0.05, report.table()
    assert trained["accuracy"] >= 2 * report.chance
    assert "imagenet" in report.skipped_encoders


@pytest.mark.slow
def test_the_cli_probes_and_writes_json(trained_encoder, motifs, tmp_path):
    output = tmp_path / "probe.json"
    result = run_module(
        "miro.evaluate",
        f"probe={motifs}",
        f"ckpt={trained_encoder}",
        "probe_settings.imagenet_weights=" + str(tmp_path / "none.pth"),
        "num_workers=0",
        "progress=false",
        f"probe_output={output}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["classes"] == list(CLASSES) and report["image_size"] == TRAINED_SIZE
    assert set(report["encoders"]) == {"trained", "random_init", "imagenet"}
    assert "none.pth does not exist" in report["encoders"]["imagenet"]["skipped"]
    majority = report["chance"]["majority_class"]
    assert report["train_images"][majority] == max(report["train_images"].values())
    share = report["test_images"][majority] / sum(report["test_images"].values())
    assert report["chance"]["accuracy"] == pytest.approx(share)
    assert "linear probe on" in result.stdout and "unreadable images left out: 1" in result.stdout
    assert "split test:" not in result.stdout  # no dataset_dir given: the probe alone

    nowhere = run_module(
        "miro.evaluate",
        f"probe={tmp_path / 'nowhere'}",
        f"ckpt={trained_encoder}",
        f"hydra.run.dir={tmp_path}",
    )
    assert nowhere.returncode != 0 and "no such folder" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


def test_the_cli_runs_retrieval_too_when_dataset_dir_is_given(
    encoder_checkpoint, synthetic_dataset, tmp_path
):
    folder = write_labelled_folder(tmp_path / "motifs", classes=("moon", "star"), per_class=4)
    result = run_module(
        "miro.evaluate",
        f"probe={folder}",
        f"ckpt={encoder_checkpoint[0]}",
        f"dataset_dir={synthetic_dataset}",
        "probe_settings.random_init=false",
        "probe_settings.imagenet=false",
        "image_size=32",
        "num_workers=0",
        "progress=false",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "linear probe on" in result.stdout and "split test:" in result.stdout
    assert (tmp_path / "run" / "probe.json").is_file()
    assert (tmp_path / "run" / "evaluation.json").is_file()
