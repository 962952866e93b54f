"""Posts/s of ``python -m data_pipeline.build``: cold builds, an unchanged re-run, a grown re-run.

Synthetic posts are generated once per image size (the generator's own 256-384 px, and
Instagram's 1080-1440 px where JPEG draft decoding matters); every build then runs as a user
types it, in a fresh process (so the lingua model load and the interpreter start count). The
contenders of a round alternate: workers=2 (the default on this machine), workers=1, and
workers=2 without draft decoding; each cold build writes into a new dataset dir. The warm
re-run builds the same raw folder again into the workers=2 dataset; the grown re-run adds 10%
new posts first. The language detector's throughput (high vs low accuracy) is timed apart.

Wall time is what a user waits, but on a shared machine it measures the neighbours too, so
each build's CPU seconds (its image workers included) are reported beside it, and an estimate
for two idle cores: the CPU of every stage, the image stage's divided among its workers.

    python benchmarks/build_throughput.py --posts 2000 --repeats 3
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import header

from data_pipeline.build.language import LanguageDetector
from data_pipeline.raw import read_posts
from data_pipeline.synthetic import GeneratorSettings, generate_posts

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"synthetic 256-384 px": (256, 384), "instagram 1080-1440 px": (1080, 1440)}
CONTENDERS = {
    "workers=2": ["workers=2"],
    "workers=1": ["workers=1"],
    "workers=2 no draft": ["workers=2", "jpeg_draft=false"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_build(raw: Path, out: Path, *overrides: str) -> dict:
    """One CLI build: its report, plus ``wall``, ``cpu`` (all processes) and ``estimate``."""
    command = [sys.executable, "-m", "data_pipeline.build", f"raw={raw}", f"out={out}"]
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(
        [*command, "progress=false", *overrides], cwd=ROOT, check=True, capture_output=True
    )
    report = json.loads((out / "report.json").read_text())
    report["wall"] = time.perf_counter() - started
    report["cpu"] = _children_cpu() - cpu
    workers = 1 if "workers=1" in overrides else 2
    images_cpu = report["timings"]["images"]["cpu"]
    report["estimate"] = report["cpu"] - images_cpu + images_cpu / workers
    return report


def _slug(name: str) -> str:
    """A contender's name as a path Hydra's override parser accepts (no '=' or spaces)."""
    return name.replace("=", "").replace(" ", "-")


def generate(raw: Path, num_posts: int, size: tuple[int, int], seed: int = 0) -> None:
    settings = GeneratorSettings(min_size=size[0], max_size=size[1])
    generate_posts(raw, num_posts=num_posts, seed=seed, settings=settings)


def bench_size(work: Path, label: str, size: tuple[int, int], args) -> None:
    raw = work / "raw"
    generate(raw, args.posts, size)
    runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
    for round_ in range(args.repeats):
        for name, overrides in CONTENDERS.items():
            out = work / f"dataset-{round_}-{_slug(name)}"
            runs[name].append(run_build(raw, out, *overrides))
            if name != "workers=2" or round_ != args.repeats - 1:
                shutil.rmtree(out)
    warm_out = work / f"dataset-{args.repeats - 1}-{_slug('workers=2')}"
    warm = [run_build(raw, warm_out) for _ in range(args.repeats)]
    # Grow: 10% new posts arrive in another hashtag folder.
    generate(raw / "#more", max(1, args.posts // 10), size, seed=1)
    grown = run_build(raw, warm_out)

    images = runs["workers=2"][0]["work"]["images_processed"]
    print(f"\n## {label}: {args.posts} posts, {images} images cached per cold build")
    print(f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    median = {
        name: {key: statistics.median(run[key] for run in values) for key in ("wall", "cpu")}
        | {"estimate": statistics.median(run["estimate"] for run in values)}
        for name, values in runs.items()
    }
    base = median["workers=2"]
    for name, values in median.items():
        wall, cpu, estimate = values["wall"], values["cpu"], values["estimate"]
        stages = ", ".join(f"{k} {v['cpu']:.2f}" for k, v in runs[name][0]["timings"].items())
        print(
            f"cold {name:<18} wall {wall:6.2f} s ({images / wall:5.1f} img/s)  "
            f"CPU {cpu:6.2f} s ({cpu / base['cpu']:.2f}x)  2 idle cores ~{estimate:5.2f} s "
            f"({images / estimate:5.1f} img/s, {estimate / base['estimate']:.2f}x)  "
            f"stage CPU: {stages}"
        )
    print(
        f"warm re-run (unchanged)  wall {statistics.median(r['wall'] for r in warm):6.2f} s "
        f"(CLI: interpreter and Hydra start included; the build itself "
        f"{statistics.median(r['seconds'] for r in warm):.2f} s), work {warm[0]['work']}"
    )
    print(
        f"grown re-run (+{grown['work']['posts_read']} posts) wall {grown['wall']:6.2f} s, "
        f"CPU {grown['cpu']:.2f} s (language {grown['timings']['language']['cpu']:.2f} s of it), "
        f"work {grown['work']}"
    )


def bench_language(work: Path, args) -> None:
    raw = work / "captions"
    generate_posts(raw, num_posts=args.captions, seed=2)  # en/es/ca/fr, as the realistic world
    posts, _ = read_posts(raw)
    captions = [post.caption or "" for post in posts]
    print(f"\n## language detection: {len(captions)} captions of the four-language world")
    for accuracy in ("low", "high"):
        detector = LanguageDetector(accuracy=accuracy)
        started, cpu = time.perf_counter(), time.process_time()
        detector.detect(captions)  # the first call loads the models it needs
        first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
        rounds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            found = detector.detect(captions)
            rounds.append(time.perf_counter() - started)
        median = statistics.median(rounds)
        kept = sum(language in detector.keep for language in found) / len(found)
        print(
            f"lingua {accuracy:<4} first call {first:5.2f} s ({first_cpu:.2f} s CPU, models "
            f"loaded), then {len(captions) / median:6.0f} captions/s; "
            f"{kept:.1%} kept as en/es/ca/fr"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--captions", type=int, default=1000)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    print(header("data_pipeline.build throughput"))
    with tempfile.TemporaryDirectory(prefix="build_throughput_") as directory:
        work = Path(directory)
        bench_language(work, args)
        for label in args.sizes:
            (work / label.split()[0]).mkdir()
            bench_size(work / label.split()[0], label, SIZES[label], args)


if __name__ == "__main__":
    main()
