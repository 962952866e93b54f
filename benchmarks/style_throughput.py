"""Speed of the N-style stylizer on this machine: training steps/s (256 px, batch 4, VGG-16 to
relu4_3, random weights) for 1 and 9 styles, and the latency and peak memory of stylizing one
image at 256, 512 and 1024 px.

    python benchmarks/style_throughput.py
"""

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from step_timer import timed_fit

from data_pipeline.synthetic import generate_posts
from miro.models.stylizer import Stylizer

CONF = Path(__file__).resolve().parents[1] / "conf"


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
        "module.samples_dir=null",
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
    """Median ms to stylize one ``size``² image (default width), and this process's peak RSS."""
    torch.manual_seed(0)
    stylizer = Stylizer(num_styles=9).eval()
    image, style = torch.rand(1, 3, size, size), torch.tensor([3])
    times = []
    with torch.inference_mode():
        stylizer(image, style)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            stylizer(image, style)
            times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"size": size, "ms": 1000 * statistics.median(times), "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2, help="rounds of 1 vs 9 styles")
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024])
    parser.add_argument("--latency", type=int, help=argparse.SUPPRESS)  # one size, in a child
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    if args.latency:  # a fresh process per size, so peak memory is that size's own
        print(json.dumps(stylize_latency(args.latency, repeats=5)))
        return

    latencies = [
        json.loads(
            subprocess.run(
                [sys.executable, __file__, "--latency", str(size)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.splitlines()[-1]
        )
        for size in args.sizes
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_posts(root / "content", num_posts=24, seed=0)
        one, nine = [], []
        for _ in range(args.repeats):
            one.append(train_steps_per_s(root, 1, args))
            nine.append(train_steps_per_s(root, 9, args))

    print(f"torch threads {torch.get_num_threads()}; stylizer width 32 (1.7M parameters)")
    print(f"training, {args.image_size} px, batch {args.batch_size}, VGG-16 to relu4_3:")
    one_s, nine_s = 1 / statistics.median(one), 1 / statistics.median(nine)
    print(f"  1 style   {one_s:6.2f} s/step  (rounds: {', '.join(f'{1 / r:.2f}' for r in one)})")
    print(f"  9 styles  {nine_s:6.2f} s/step  (rounds: {', '.join(f'{1 / r:.2f}' for r in nine)})")
    print(f"  cost of 9 styles vs 1: {nine_s / one_s:.3f}x")
    print("stylize one image (inference_mode, median of 5):")
    for row in latencies:
        print(f"  {row['size']:5d} px  {row['ms']:8.1f} ms   peak RSS {row['peak_mb']:7.0f} MB")


if __name__ == "__main__":
    main()
