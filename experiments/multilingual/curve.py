"""The learning curve of experiments/multilingual/README.md: for each number of posts of the
realistic synthetic world and each way of learning from four languages, train the encoder and
score its motif queries per query language against the ground truth, beside chance.

    python experiments/multilingual/curve.py                                  # the whole table
    python experiments/multilingual/curve.py --posts 3000 --methods words     # one row

Each row prints the `python -m miro.train` commands that made it; datasets and runs land under
``--work`` (kept, so a second call reuses the datasets).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from data_pipeline.synthetic.labelled import write_labelled_folder
from miro.retrieval.evaluation import evaluate_encoder
from miro.retrieval.labelled import probe_split
from miro.retrieval.probe import ProbeSettings, probe_checkpoint

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("en", "es", "ca", "fr")
MOTIFS = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "queries" / "motifs.yaml"))
# Each method: the training overrides, and whether it trains one model per caption language.
METHODS = {
    "lda": (["text=lda", "loss=sigmoid_ce"], False),  # TextTopicNet: one LDA over all captions
    "separate": (["text=lda", "loss=sigmoid_ce"], True),  # InstaBarcelona: one per language
    "words": (["text=words", "loss=softmax_ce"], False),  # the caption's words (Joulin et al.)
}


def run(command: list[str]) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def dataset(work: Path, posts: int) -> Path:
    """The realistic world with ``posts`` posts (seed 0), built once."""
    raw, built = work / f"posts{posts}" / "raw", work / f"posts{posts}" / "dataset"
    if not (built / "manifest.parquet").is_file():
        python = [sys.executable, "-m"]
        run([*python, "data_pipeline.synthetic", f"out={raw}", f"num_posts={posts}", "seed=0"])
        run([*python, "data_pipeline.build", f"raw={raw}", f"out={built}", "progress=false"])
    return built


def train(data: Path, run_dir: Path, overrides: list[str], epochs: int) -> Path:
    """``last.ckpt`` of ``+experiment=instagram_text`` at 64 px on ``data``."""
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        run(
            [
                sys.executable,
                "-m",
                "miro.train",
                "+experiment=instagram_text",
                f"data.dataset_dir={data}",
                "data.image_size=64",
                f"trainer.max_epochs={epochs}",
                "+trainer.enable_progress_bar=false",
                "logger=csv",
                "test=false",
                *overrides,
                f"hydra.run.dir={run_dir}",
            ]
        )
    return checkpoint


def motif_queries(language: str | None) -> dict:
    """The motif queries, in every language or in one."""
    if language is None:
        return MOTIFS
    return {label: {language: words[language]} for label, words in MOTIFS.items()}


def score(checkpoint: Path, data: Path, language: str | None) -> dict[str, float]:
    evaluation = evaluate_encoder(
        checkpoint, data, motif_queries(language), split="test", progress=False
    )
    return evaluation.metrics()


def probe(checkpoint: Path, work: Path) -> dict[str, float]:
    """Linear-probe accuracy of the encoder and of a random-init one on 7 motifs × 60 images."""
    folder = work / "probe"
    if not folder.is_dir():
        write_labelled_folder(folder, per_class=60, size=64, seed=0)
    settings = ProbeSettings(imagenet=False)
    report = probe_checkpoint(checkpoint, probe_split(folder), settings, progress=False)
    return {f"probe_{name}": scores["accuracy"] for name, scores in report.scores.items()}


def measure(work: Path, posts: int, method: str, epochs: int) -> dict:
    """One row: per-language mAP and P@5 with their chance, overlap, probe accuracy, minutes."""
    data = dataset(work, posts)
    overrides, per_language = METHODS[method]
    start = time.perf_counter()
    row: dict = {"posts": posts, "method": method}
    if per_language:
        for language in LANGUAGES:
            run_dir = work / f"posts{posts}" / f"{method}_{language}"
            model = train(data, run_dir, [*overrides, f"data.languages=[{language}]"], epochs)
            metrics = score(model, data, language)
            row |= {k: v for k, v in metrics.items() if k.endswith(f"_{language}")}
        row["test/overlap_at_10"] = None  # four models: their rankings are not comparable
        row |= probe(model, work)  # the last language's encoder
    else:
        model = train(data, work / f"posts{posts}" / method, overrides, epochs)
        row |= score(model, data, None) | probe(model, work)
    row["minutes"] = (time.perf_counter() - start) / 60
    return row


def ratio(row: dict, name: str, language: str) -> str:
    value, chance = row.get(f"test/{name}_{language}"), row.get(f"test/{name}_chance_{language}")
    return "–" if value is None else f"{value:.3f} ({value / chance:.1f}×)"


def markdown(rows: list[dict]) -> str:
    header = ["posts", "method"]
    header += [f"mAP {lang}" for lang in LANGUAGES] + [f"P@5 {lang}" for lang in LANGUAGES]
    header += ["overlap@10", "probe (random init)", "train+eval min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        overlap = row.get("test/overlap_at_10")
        cells = [f"{row['posts']:,}", row["method"]]
        cells += [ratio(row, "map", lang) for lang in LANGUAGES]
        cells += [ratio(row, "p_at_5", lang) for lang in LANGUAGES]
        cells += ["–" if overlap is None else f"{overlap:.2f}"]
        cells += [
            f"{row['probe_trained']:.2f} ({row['probe_random_init']:.2f})",
            f"{row['minutes']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[1500, 3000, 6000])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "multilingual")
    args = parser.parse_args()
    rows = []
    for posts in args.posts:
        for method in args.methods:
            rows.append(measure(args.work, posts, method, args.epochs))
            print(json.dumps(rows[-1]), flush=True)
    print(markdown(rows))


if __name__ == "__main__":
    main()
