"""This CPU's arithmetic peak beside PyTorch's 3×3 convolution rate: the ceiling every speed
target here answers to.

``cpu_peak.c`` times fused multiply-adds on independent registers, so nothing but the CPU's
arithmetic units limits them: the float32 peak, and the bfloat16 dot-product peak where the CPU
has AVX512-BF16. Beside it, ``timing.conv_rate`` (the rate the other benchmarks quote) at the
same thread count, in float32 and bfloat16. A loop whose arithmetic is convolutions cannot run
faster than the peak, so a speed target that needs more is out of reach at that arithmetic.
Needs a C compiler with OpenMP (``cc``, or ``CC=...``).

    python benchmarks/cpu_peak.py                  # torch's default thread count and 1
    python benchmarks/cpu_peak.py --threads 1 2 4
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from timing import conv_rate, header, threads

SOURCE = Path(__file__).with_name("cpu_peak.c")


def build(directory: Path) -> Path:
    """Compile ``cpu_peak.c`` for this CPU; exit with a message when no compiler is found."""
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        sys.exit(f"cpu_peak: no C compiler {compiler!r}; install gcc or set CC=...")
    binary = directory / "cpu_peak"
    command = [compiler, "-O2", "-march=native", "-fopenmp", str(SOURCE), "-o", str(binary)]
    subprocess.run(command, check=True)
    return binary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, nargs="*", default=sorted({torch.get_num_threads(), 1}, reverse=True)
    )
    args = parser.parse_args()
    print(header("arithmetic peak of this CPU vs PyTorch's 3x3 convolution rate"))
    with tempfile.TemporaryDirectory() as tmp:
        binary = build(Path(tmp))
        print("threads | dtype    | arithmetic peak | 3x3 conv rate   | conv / peak")
        for count in args.threads:
            run = subprocess.run([binary, str(count)], capture_output=True, text=True, check=True)
            peaks = json.loads(run.stdout)
            with threads(count):
                for dtype in (torch.float32, torch.bfloat16):
                    name = str(dtype).removeprefix("torch.")
                    rate, peak = conv_rate(repeats=20, dtype=dtype), peaks.get(name)
                    shown = f"{peak:7.1f} GFLOP/s | " if peak else "(no kernel)     | "
                    share = f"{rate / peak:6.0%}" if peak else ""
                    print(f"{count:7d} | {name:8s} | {shown}{rate:7.1f} GFLOP/s | {share}")


if __name__ == "__main__":
    main()
