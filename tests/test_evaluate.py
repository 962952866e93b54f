"""`python -m miro.evaluate` and `python -m miro.retrieve` on an encoder trained in the session
on the synthetic set: held-out posts found by text, judged by the generator's ground truth."""

import json

import pyarrow.parquet as pq
import pytest
from conftest import encoder_config, run_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from miro.retrieval.evaluation import evaluate_encoder
from miro.retrieval.queries import read_ground_truth

MOTIFS = ["star", "moon", "sun", "eye", "bird", "ladder", "spiral"]


@pytest.fixture(scope="module")
def test_labels(synthetic_dataset) -> dict[str, frozenset[str]]:
    """The ground-truth labels of the dataset's test posts."""
    labels = read_ground_truth(synthetic_dataset.parent / "raw" / "ground_truth.jsonl")
    manifest = pq.read_table(synthetic_dataset / "manifest.parquet").to_pydict()
    return {
        post: labels[post]
        for post, split in zip(manifest["id"], manifest["split"], strict=True)
        if split == "test"
    }


@pytest.mark.slow
def test_evaluate_scores_held_out_posts_by_their_labels(
    trained_encoder, synthetic_dataset, tmp_path
):
    output = tmp_path / "evaluation.json"
    where = [f"ckpt={trained_encoder}", f"dataset_dir={synthetic_dataset}", "num_workers=0"]
    result = run_module("miro.evaluate", *where, f"output={output}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "relevance by ground-truth labels" in result.stdout and "P@5" in result.stdout
    report = json.loads(output.read_text())
    rows = {row["word"]: row for row in report["queries"]}
    assert set(MOTIFS) <= set(rows) and "mujer" in report["unknown_words"]  # English captions
    motifs = [rows[word] for word in MOTIFS]
    assert all(row["label"] == row["word"] and row["relevant"] > 0 for row in motifs)
    # The learnable world draws one motif an image: the motifs' precision beside chance.
    p_at_5 = sum(row["p_at_5"] for row in motifs) / len(motifs)
    chance = sum(row["relevant"] / report["posts"] for row in motifs) / len(motifs)
    assert p_at_5 >= 2.5 * chance, (p_at_5, chance, report["metrics"])
    assert report["metrics"]["test/map"] > report["metrics"]["test/map_chance"]

    by_caption = run_module(
        "miro.evaluate", *where, "labels=null", "split=val", f"hydra.run.dir={tmp_path}"
    )
    assert by_caption.returncode == 0, by_caption.stderr[-3000:]
    assert "split val:" in by_caption.stdout and "relevance by captions" in by_caption.stdout


def test_evaluate_errors_name_the_fix(synthetic_dataset, tmp_path):
    missing = run_module("miro.evaluate", f"hydra.run.dir={tmp_path}")
    assert missing.returncode != 0 and "ckpt=PATH" in missing.stderr
    wrong = run_module(
        "miro.evaluate",
        f"ckpt={tmp_path / 'none.ckpt'}",
        f"dataset_dir={synthetic_dataset}",
        f"hydra.run.dir={tmp_path}",
    )
    assert wrong.returncode != 0 and "none.ckpt" in wrong.stderr
    assert "Traceback" not in missing.stderr + wrong.stderr


@pytest.mark.slow
def test_retrieve_finds_held_out_posts_whose_labels_hold_the_word(
    trained_encoder, synthetic_dataset, test_labels, tmp_path
):
    """The top 5 of text queries over the test split, against how often their labels occur
    there (pooled over three motifs: one query's top 5 of ~45 posts is too noisy alone)."""
    hits, base_rates = [], []
    for words in ("star", "moon", "bird"):
        result = run_module(
            "miro.retrieve",
            "query",
            f"ckpt={trained_encoder}",
            f"dataset_dir={synthetic_dataset}",
            "split=test",
            f"words={words}",
            "k=5",
            "build_if_missing=true",
            "num_workers=0",
            "progress=false",
            f"output={tmp_path / words}.png",
            f"hydra.run.dir={tmp_path}",
        )
        assert result.returncode == 0, result.stderr[-3000:]
        found = [line.split()[1] for line in result.stdout.split("caption\n")[1].splitlines()[:5]]
        hits += [words in test_labels[post] for post in found]
        base_rates.append(
            sum(words in labels for labels in test_labels.values()) / len(test_labels)
        )
        assert (tmp_path / f"{words}.png").is_file()
    precision, chance = sum(hits) / len(hits), sum(base_rates) / len(base_rates)
    assert precision >= 2.5 * chance, (hits, precision, chance)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")  # no callbacks: testing
def test_the_command_scores_what_training_s_test_step_scores(
    trained_encoder, synthetic_dataset, tmp_path
):
    """One protocol: `miro.evaluate` and the Lightning test step agree on the same checkpoint."""
    cfg = encoder_config(synthetic_dataset, tmp_path)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    module, datamodule = instantiate(cfg.module), instantiate(cfg.data)
    (tested,) = trainer.test(module, datamodule=datamodule, ckpt_path=trained_encoder)
    evaluation = evaluate_encoder(
        trained_encoder,
        synthetic_dataset,
        OmegaConf.to_container(cfg.queries),
        image_size=cfg.data.image_size,
        num_workers=0,
        progress=False,
    )
    for name, value in evaluation.metrics().items():
        assert value == pytest.approx(tested[name], abs=1e-6), name
