"""What ``min_words`` drops when it counts words as written and when it counts content words.

Prints the tables of experiments/build_filters/README.md:

1. the synthetic worlds (``realistic`` and ``learnable``): generated as
   ``python -m data_pipeline.synthetic`` does, then built with ``python -m data_pipeline.build``
   once per ``word_count``; the posts the word filter drops are split by caption language and by
   whether the caption names a motif of its image (``ground_truth.jsonl``). Each world's
   ``content`` dataset is then rebuilt in place with ``word_count=written`` and must equal the
   cold ``written`` build: the incremental state re-decides a changed rule.
2. the real-caption fixtures: the captions of the replayed Instagram responses under
   tests/fixtures/instagram/ and those tests/test_build.py writes into its posts.

Usage (about 2 minutes on 2 busy cores)::

    python experiments/build_filters/word_count.py --posts 1500 --seed 0
"""

import argparse
import ast
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from data_pipeline.build.filters import CONTENT, WORD_COUNTS, MinWords, written_words
from data_pipeline.raw import RawPost, read_posts
from data_pipeline.synthetic import GROUND_TRUTH, LANGUAGES

REPO = Path(__file__).resolve().parents[2]
WORLDS = ("realistic", "learnable")
FIXTURES = REPO / "tests" / "fixtures" / "instagram"
TEST_BUILD = REPO / "tests" / "test_build.py"


def cli(module: str, *overrides: str) -> None:
    """Run a stage as a user types it; its output is not part of the table."""
    command = [sys.executable, "-m", module, *overrides]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)


def word_filters(tokenizer) -> dict[str, MinWords]:
    """The build's own word filter, once per ``word_count``, as conf/build.yaml configures it."""
    return {choice: MinWords(tokenizer, 3, choice) for choice in WORD_COUNTS}


def build(raw: Path, out: Path, word_count: str) -> dict:
    """Build with the CLI; returns report.json plus the kept ids."""
    cli("data_pipeline.build", f"raw={raw}", f"out={out}", f"word_count={word_count}")
    report = json.loads((out / "report.json").read_text())
    report["ids"] = pq.read_table(out / "manifest.parquet", columns=["id"]).column("id")
    return report


def synthetic_rows(posts: int, seed: int, work: Path, filters: dict, tokenizer) -> list[list]:
    rows = []
    for world in WORLDS:
        raw = work / world / "raw"
        cli(
            "data_pipeline.synthetic",
            f"out={raw}",
            f"num_posts={posts}",
            f"seed={seed}",
            f"generator={world}",
        )
        truth = {
            row["shortcode"]: row
            for row in map(json.loads, (raw / GROUND_TRUTH).read_text().splitlines())
        }
        read, _ = read_posts(raw)
        per_language = Counter(truth[post.id]["language"] for post in read)
        reports = {choice: build(raw, work / world / choice, choice) for choice in WORD_COUNTS}
        for choice, report in reports.items():
            dropped = [post for post in read if filters[choice](post)]
            assert len(dropped) == report["dropped"]["too_few_words"], (world, choice)
            naming = sum(truth[post.id]["caption_mentions_image"] for post in dropped)
            by_language = Counter(truth[post.id]["language"] for post in dropped)
            kept = set(report["ids"].to_pylist())
            kept_naming = sum(truth[post_id]["caption_mentions_image"] for post_id in kept)
            empty = sum(not tokenizer(post.caption or "") for post in read if post.id in kept)
            rows.append(
                [
                    world,
                    choice,
                    f"{len(dropped)} ({len(dropped) / len(read):.1%})",
                    f"{naming} ({naming / max(len(dropped), 1):.0%})",
                    *(
                        f"{by_language[code]}/{per_language[code]}" if per_language[code] else "-"
                        for code in LANGUAGES
                    ),
                    f"{report['kept']} ({kept_naming})",
                    str(empty),
                ]
            )
        # The content dataset rebuilt in place under the other rule equals a cold build.
        again = build(raw, work / world / CONTENT, "written")
        assert again["ids"].equals(reports["written"]["ids"]), world
        assert again["dropped"] == reports["written"]["dropped"], world
    return rows


def fixture_captions() -> list[tuple[str, str]]:
    """``(source, caption)``: the replayed responses' captions, then test_build.py's."""
    found: list[tuple[str, str]] = []

    def walk(node, source: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append((source, value))
                walk(value, source)
        elif isinstance(node, list):
            for value in node:
                walk(value, source)

    for path in sorted(FIXTURES.glob("*.json")):
        walk(json.loads(path.read_text()), path.name)
    # test_build.py's captions: its *CAPTION(S) constants and the literal txt=/json_caption=.
    tree = ast.parse(TEST_BUILD.read_text())
    for node in tree.body:
        names = [getattr(target, "id", "") for target in getattr(node, "targets", [])]
        if len(names) == 1 and names[0].endswith(("CAPTION", "CAPTIONS")):
            found.extend(("test_build.py", text) for text in _strings(ast.literal_eval(node.value)))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.keyword)
            and node.arg in ("txt", "json_caption")
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.append(("test_build.py", node.value.value))
    return list(dict.fromkeys(found))


def _strings(value) -> list[str]:
    """The captions in a constant: a string, or the first string of each entry of a table."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [entry if isinstance(entry, str) else entry[0] for entry in value]


def fixture_rows(filters: dict) -> list[list]:
    rows = []
    for source, caption in fixture_captions():
        post = RawPost("", Path(), caption, None, None, (), ())
        counts = [len(filters[choice].words(caption)) for choice in WORD_COUNTS]
        verdicts = ["dropped" if filters[choice](post) else "kept" for choice in WORD_COUNTS]
        shown = caption.replace("\n", " ")
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        rows.append([source, f"`{shown}`", *map(str, counts), *verdicts])
    return rows


def markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the worlds and datasets here")
    args = parser.parse_args()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        tokenizer = instantiate(compose("build", overrides=["raw=-", "out=-"]).tokenizer)
    filters = word_filters(tokenizer)
    assert filters["written"].words is written_words
    with tempfile.TemporaryDirectory(prefix="build_filters_") as scratch:
        work = args.work or Path(scratch)
        synthetic = synthetic_rows(args.posts, args.seed, work, filters, tokenizer)
    header = [
        "world",
        "word_count",
        "dropped by min_words",
        "of them naming a motif",
        *(f"{code} dropped" for code in LANGUAGES),
        "kept by the build (naming a motif)",
        "kept with no content word",
    ]
    print(f"## Synthetic worlds: {args.posts} posts, seed {args.seed}, min_words 3\n")
    print(markdown(header, synthetic))
    rows = fixture_rows(filters)
    print(f"\n## Real-caption fixtures: {len(rows)} captions, min_words 3\n")
    counts = [f"{choice} words" for choice in WORD_COUNTS]
    print(markdown(["source", "caption", *counts, *WORD_COUNTS], rows))
    for index, choice in enumerate(WORD_COUNTS):
        dropped = sum(row[4 + index] == "dropped" for row in rows)
        print(f"\n{choice}: {dropped} of {len(rows)} fixture captions dropped", end="")
    print()


if __name__ == "__main__":
    main()
