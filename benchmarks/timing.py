"""What every benchmark shares: a header naming the run (date, commit, machine, threads, load),
contenders timed in alternating rounds with medians, and this CPU's 3×3 convolution rate to
compare a loop's arithmetic rate with."""

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The checked-out commit, with ``+changes`` when the working tree differs from it."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{sha}+changes" if dirty else sha or "unknown"


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def header(title: str) -> str:
    """The lines that open a benchmark's output: what ran, where, when, at which load."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"# {title}\n"
        f"date {date.today().isoformat()}, commit {commit()}, torch {torch.__version__}, "
        f"{cpu_name()} ({os.cpu_count()} cores), load average {load}"
    )


@contextmanager
def threads(count: int) -> Iterator[int]:
    """Run the block with ``count`` torch threads, then restore the previous number."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Timing:
    """Median wall and process-CPU seconds of one contender, with every round's wall time."""

    wall: float
    cpu: float
    rounds: tuple[float, ...]


def alternate(contenders: dict[str, Callable[[], object]], rounds: int) -> dict[str, Timing]:
    """Time each contender once per round, in turn, the order reversed every other round (so
    neither always runs on a cache or allocator the other warmed); medians over the rounds.
    Warm each contender up before calling this."""
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(rounds):
        order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
        for name in order:
            wall, cpu = time.perf_counter(), time.process_time()
            contenders[name]()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {
        name: Timing(
            statistics.median(walls[name]), statistics.median(cpus[name]), tuple(walls[name])
        )
        for name in contenders
    }


def conv_rate(repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of a 3×3 convolution, 256 → 256 channels on 64 × 64 (a VGG-16 conv3 layer),
    channels-last, forward, at the current thread count: the rate a loop made of such
    convolutions could reach (float32 unless ``dtype`` says otherwise)."""
    x = torch.randn(1, 256, 64, 64, dtype=dtype).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(256, 256, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
    flops = 2 * 256 * 256 * 9 * 64 * 64
    with torch.inference_mode():
        F.conv2d(x, weight, padding=1)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            F.conv2d(x, weight, padding=1)
            seconds.append(time.perf_counter() - start)
    return flops / statistics.median(seconds) / 1e9


def flops_of(function: Callable[[], object]) -> int:
    """Floating-point operations ``function()`` runs, forward and backward (torch's counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()
