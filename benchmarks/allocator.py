"""glibc's malloc and page faults: the style training step and the GoogLeNet dream, ours and the
peer's, under glibc's default settings and with large buffers kept in the process's heap.

By default glibc serves every buffer over 32 MB (and smaller ones, until its threshold adapts)
with a fresh ``mmap`` and returns it to the system on ``free``, so each training step touches
its large activations and gradients as new pages and takes a page fault for every 4 KB of them.
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736`` keeps all of them in the heap, reused
from step to step; the process then holds its peak memory until it exits.

The allocator belongs to a process, so each setting runs in processes of its own, alternating
(default, kept, default, ...); within each, ours and the peer's loop alternate as in
``style_throughput.py`` and ``dream_speed.py``. Printed: median seconds, page faults per step
or dream, and ours / peer under each setting.

    python benchmarks/allocator.py                    # 3 processes per setting, both workloads
    python benchmarks/allocator.py --workloads style --rounds 5
"""

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace

KEEP_IN_HEAP = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**36)}
SETTINGS = {"default": {}, "kept in heap": KEEP_IN_HEAP}


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measured(run: Callable[[], object]) -> tuple[object, float, int]:
    """What ``run()`` returns, its wall seconds and the minor page faults it took."""
    before, start = faults(), time.perf_counter()
    result = run()
    return result, time.perf_counter() - start, faults() - before


def style_contenders(root: Path) -> dict[str, Callable[[], tuple[float, int]]]:
    """One style training step of ours (the Lightning Trainer, as ``style_throughput.py`` runs
    it) and of the peer's loop: seconds per step and page faults per step, 5 steps after 2."""
    from step_timer import timed_fit
    from style_throughput import our_module, peer_seconds, training_world

    args = SimpleNamespace(image_size=256, batch_size=4, warmup=2, steps=5)
    batches, peer_training = training_world(root, args)
    peer = peer_training()

    def ours() -> tuple[float, int]:
        module, data = our_module(root, 1, args)
        seconds, _, count = measured(
            lambda: timed_fit(module, args.warmup, args.steps, datamodule=data)
        )
        return seconds / args.steps, count // (args.warmup + args.steps)

    def theirs() -> tuple[float, int]:
        seconds, _, count = measured(lambda: peer_seconds(peer, batches, args))
        return seconds / args.steps, count // (args.warmup + args.steps)

    return {"ours": ours, "peer": theirs}


def dream_contenders(root: Path) -> dict[str, Callable[[], tuple[float, int]]]:
    """A 512 px GoogLeNet dream (inception4c, 4 octaves × 10 steps) of ours (float32) and of
    the peer's loop, as ``dream_speed.py`` times them; each warmed up once."""
    from dream_speed import networks
    from peer_deepdream import peer_dream

    from miro.deepdream import DreamSettings, dream, layer, noise_image

    peer, model = networks("googlenet")
    image = noise_image(512, 512, seed=0)
    settings = DreamSettings(4, 1.4, 10, precision="float32")
    runs = {
        "ours": lambda: dream(model, image, layer("inception4c"), settings),
        "peer": lambda: peer_dream(peer, ["inception4c"], image, 4, 1.4, 10),
    }
    for run in runs.values():
        run()

    def timed(run: Callable[[], object]) -> tuple[float, int]:
        _, seconds, count = measured(run)
        return seconds, count

    return {name: partial(timed, run) for name, run in runs.items()}


WORKLOADS = {"style": style_contenders, "dream": dream_contenders}
UNITS = {"style": "s/step", "dream": "s/dream"}


def child(workload: str) -> None:
    """Time ours and the peer's once each (this process's allocator) and print them as JSON."""
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("miro").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        contenders = WORKLOADS[workload](Path(tmp))
        print(json.dumps({name: run() for name, run in contenders.items()}))


def parent(args) -> None:
    from timing import header

    print(header("glibc malloc: default vs large buffers kept in the heap, ours and the peer's"))
    print(f"kept in heap: {' '.join(f'{k}={v}' for k, v in KEEP_IN_HEAP.items())}")
    for workload in args.workloads:
        rows: dict[str, dict[str, list]] = {s: {"ours": [], "peer": []} for s in SETTINGS}
        for round_ in range(args.rounds):
            order = list(SETTINGS) if round_ % 2 == 0 else list(reversed(SETTINGS))
            for setting in order:
                env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
                command = [sys.executable, __file__, "--child", workload]
                result = subprocess.run(
                    command, env=env | SETTINGS[setting], capture_output=True, text=True
                )
                if result.returncode:
                    sys.exit(f"{workload} under {setting} failed:\n{result.stderr[-3000:]}")
                for name, value in json.loads(result.stdout.splitlines()[-1]).items():
                    rows[setting][name].append(value)
        report(workload, rows)


def report(workload: str, rows: dict[str, dict[str, list]]) -> None:
    unit = UNITS[workload]
    print(f"\n{workload}: medians of {len(rows['default']['ours'])} processes per setting")
    medians = {}
    for setting, contenders in rows.items():
        for name, values in contenders.items():
            seconds = statistics.median(v[0] for v in values)
            pages = statistics.median(v[1] for v in values)
            medians[setting, name] = seconds
            rounds = ", ".join(f"{v[0]:.2f}" for v in values)
            print(
                f"  {setting:13s} {name:5s} {seconds:6.2f} {unit}  {pages / 1e3:7.0f} K page "
                f"faults  [rounds {rounds}]"
            )
    for setting in rows:
        ratio = medians[setting, "ours"] / medians[setting, "peer"]
        print(f"  ours / peer, {setting}: {ratio:.2f}x")
    for name in ("ours", "peer"):
        gain = medians["kept in heap", name] / medians["default", name]
        print(f"  {name}: kept in heap / default {gain:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="*", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=3, help="processes per setting")
    parser.add_argument("--child", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
    else:
        parent(args)


if __name__ == "__main__":
    main()
