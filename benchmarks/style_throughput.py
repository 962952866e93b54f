"""Speed of the N-style stylizer on this machine: training steps/s (256 px, batch 4, VGG-16 to
relu4_3, random weights) for 1 and 9 styles, and the latency and peak memory of stylizing one
image at 256, 512 and 1024 px, timed against a same-run baseline: the transformer network of
pytorch/examples fast_neural_style, re-implemented below, in the same process, interleaved.

    python benchmarks/style_throughput.py
    python benchmarks/style_throughput.py --only latency --latency-repeats 9
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
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from step_timer import timed_fit
from torch import nn

from data_pipeline.synthetic import generate_posts
from miro.models.stylizer import Stylizer

CONF = Path(__file__).resolve().parents[1] / "conf"


class PaddedConv(nn.Sequential):
    """Reflection padding by half the kernel, then a convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_channels, out_channels, kernel, stride)
        )


class NormedConv(nn.Sequential):
    """Padded conv, affine instance norm, ReLU (a fresh tensor at each step, as in the peer)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1):
        super().__init__(
            PaddedConv(in_channels, out_channels, kernel, stride),
            nn.InstanceNorm2d(out_channels, affine=True),
            nn.ReLU(),
        )


class PeerResidual(nn.Module):
    """conv → norm → ReLU → conv → norm, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = NormedConv(channels, channels, 3)
        self.second = nn.Sequential(
            PaddedConv(channels, channels, 3), nn.InstanceNorm2d(channels, affine=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.second(self.first(x))


class UpsampledNormedConv(NormedConv):
    """Nearest ×2 upsampling, then a normed conv."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))


class PeerTransformerNet(nn.Sequential):
    """The same-run baseline: pytorch/examples fast_neural_style's transformer network (Johnson
    et al. 2016) as that repository builds it (9×9 conv 32, 3×3/2 64, 3×3/2 128, five residual
    blocks, two nearest ×2 + 3×3 convs, 9×9 conv to 3; reflection padding, affine instance norm,
    no norm or squashing after the last conv), written afresh here and run as it runs there:
    contiguous NCHW tensors, out-of-place ops. Same width and depth as our default stylizer."""

    def __init__(self) -> None:
        super().__init__(
            NormedConv(3, 32, 9),
            NormedConv(32, 64, 3, stride=2),
            NormedConv(64, 128, 3, stride=2),
            *(PeerResidual(128) for _ in range(5)),
            UpsampledNormedConv(128, 64, 3),
            UpsampledNormedConv(64, 32, 3),
            PaddedConv(32, 3, 9),
        )


def train_steps_per_s(root: Path, num_styles: int, args) -> float:
    """Steps/s of ``+experiment=miro_style`` with ``num_styles`` synthetic style images."""
    styles = root / f"styles_{num_styles}"
    if not styles.exists():
        generate_posts(styles, num_posts=num_styles, seed=1)
    overrides = [
        "+experiment=miro_style",
        "style_set=synthetic",
        f"style_set.dir={styles}",
        "model.loss_net.weights=null",
        f"data.image_dir={root / 'content'}",
        f"data.image_size={args.image_size}",
        f"data.batch_size={args.batch_size}",
        "callbacks.style_samples.dirpath=null",
        f"paths.root_dir={root}",
        f"paths.output_dir={root / 'run'}",
        "seed=0",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(0)
    module = instantiate(cfg.module)
    datamodule = instantiate(cfg.data)
    seconds = timed_fit(module, args.warmup, args.steps, datamodule=datamodule)
    return args.steps / seconds


def stylize_latency(size: int, repeats: int) -> dict:
    """Median ms to stylize one ``size``² image with our default stylizer and with the peer's
    network, timed in alternating order after one untimed call of each (wall time, and the
    process's CPU time, which a busy machine disturbs less with one thread); our first call's ms
    and this process's peak RSS after our warm-up (before the peer ran)."""
    torch.manual_seed(0)
    stylizer, peer = Stylizer(num_styles=9).eval(), PeerTransformerNet().eval()
    image, style = torch.rand(1, 3, size, size), torch.tensor([3])
    runs = {"ours": lambda: stylizer(image, style), "peer": lambda: peer(image)}
    times = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    with torch.inference_mode():
        start = time.perf_counter()
        runs["ours"]()
        first_ms = 1000 * (time.perf_counter() - start)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runs["peer"]()
        for round in range(repeats):
            for name in sorted(runs, reverse=round % 2 == 1):
                start, start_cpu = time.perf_counter(), time.process_time()
                runs[name]()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    ms = {name: 1000 * statistics.median(values) for name, values in times.items()}
    cpu_ms = {f"{name}_cpu": 1000 * statistics.median(values) for name, values in cpu.items()}
    return {"size": size, **ms, **cpu_ms, "ours_first": first_ms, "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2, help="rounds of 1 vs 9 styles")
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024])
    parser.add_argument("--latency-repeats", type=int, default=7, help="timed calls of each")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--only", choices=["training", "latency"], help="one half of the run")
    parser.add_argument("--latency", type=int, help=argparse.SUPPRESS)  # one size, in a child
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.latency:  # a fresh process per size, so peak memory is that size's own
        print(json.dumps(stylize_latency(args.latency, args.latency_repeats)))
        return

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch threads {torch.get_num_threads()}; stylizer width 32 (1.7M parameters)")
    print(f"load average at start: {load} on {os.cpu_count()} cores")
    if args.only != "training":  # first: a child inherits this process's peak RSS so far
        child = [sys.executable, __file__, "--latency-repeats", str(args.latency_repeats)]
        child += ["--threads", str(args.threads)] if args.threads else []
        print(
            "stylize one image, ours vs the pytorch/examples network in one process (warm-up"
            f" excluded, inference_mode, medians of {args.latency_repeats} interleaved calls):"
        )
        for size in args.sizes:
            result = subprocess.run(
                [*child, "--latency", str(size)], check=True, capture_output=True, text=True
            )
            row = json.loads(result.stdout.splitlines()[-1])
            print(
                f"  {size:5d} px  ours {row['ours']:7.0f} ms  peer {row['peer']:7.0f} ms  "
                f"ours/peer {row['ours'] / row['peer']:.2f}x  |  CPU time ours/peer "
                f"{row['ours_cpu'] / row['peer_cpu']:.2f}x  |  our first call "
                f"{row['ours_first']:.0f} ms, peak RSS {row['peak_mb']:.0f} MB"
            )
    if args.only != "latency":
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            generate_posts(root / "content", num_posts=24, seed=0)
            one, nine = [], []
            for _ in range(args.repeats):
                one.append(train_steps_per_s(root, 1, args))
                nine.append(train_steps_per_s(root, 9, args))
        print(f"training, {args.image_size} px, batch {args.batch_size}, VGG-16 to relu4_3:")
        one_s, nine_s = 1 / statistics.median(one), 1 / statistics.median(nine)
        rounds = {n: ", ".join(f"{1 / r:.2f}" for r in v) for n, v in ((1, one), (9, nine))}
        print(f"  1 style   {one_s:6.2f} s/step  (rounds: {rounds[1]})")
        print(f"  9 styles  {nine_s:6.2f} s/step  (rounds: {rounds[9]})")
        print(f"  cost of 9 styles vs 1: {nine_s / one_s:.3f}x")


if __name__ == "__main__":
    main()
