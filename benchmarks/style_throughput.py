"""Speed of the N-style stylizer against pytorch/examples' fast_neural_style, in the same
process: the training step (256 px, batch 4, VGG-16 to relu4_3, random weights) of
``+experiment=miro_style`` through Lightning, with 1 and with 9 styles, against the peer's
training loop (``peer_fast_neural_style.py``); and the latency and peak memory of stylizing one
image at 256, 512 and 1024 px against the peer's ``TransformerNet``. Each at torch's default
thread count and at one thread; contenders alternate within each round; medians.

Our step computes the content target only to relu3_3 (the peer runs both batches through
relu4_3), runs VGG-16 channels-last, folds each nearest ×2 + 3 × 3 convolution into four 2 × 2
ones, splits the 9 × 9 output convolution to 3 channels into 1 × 9 rows, and normalizes with
the per-style affine in one pass: the same objective (``tests/test_style_models.py`` checks the
gradients against the plain layers').

    python benchmarks/style_throughput.py
    python benchmarks/style_throughput.py --only training --rounds 5 --threads 2
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
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from peer_fast_neural_style import PeerTraining, TransformerNet
from step_timer import timed_fit
from timing import conv_rate, flops_of, header, threads
from torchvision.transforms.v2 import functional as TF

from data_pipeline.synthetic import generate_posts
from miro.images import find_images, load_image
from miro.models.stylizer import Stylizer

CONF = Path(__file__).resolve().parents[1] / "conf"
TARGET = 0.8  # our step time / the peer's, same run


def our_module(root: Path, num_styles: int, args):
    """The ``+experiment=miro_style`` module and data module, ``num_styles`` synthetic styles."""
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
    return instantiate(cfg.module), instantiate(cfg.data)


def content_batches(root: Path, args) -> list[torch.Tensor]:
    """The content images as the peer reads them: 256 px centre crops on [0, 255], in batches."""
    images = [
        TF.center_crop(load_image(path, short_side=args.image_size), [args.image_size])
        for path in find_images(root / "content")
    ]
    size = args.batch_size
    return [255 * torch.stack(images[i : i + size]) for i in range(0, len(images) - size + 1, size)]


def peer_seconds(peer: PeerTraining, batches: list[torch.Tensor], args) -> float:
    """Seconds of ``args.steps`` peer steps after ``args.warmup`` untimed ones."""
    for step in range(args.warmup):
        peer.step(batches[step % len(batches)])
    start = time.perf_counter()
    for step in range(args.steps):
        peer.step(batches[step % len(batches)])
    return time.perf_counter() - start


def step_flops(root: Path, peer: PeerTraining, batches: list[torch.Tensor], args) -> dict:
    """Floating-point operations of one training step of each (forward and backward)."""
    module, _ = our_module(root, 1, args)
    content = batches[0] / 255

    def ours() -> None:
        _, parts = module.losses(content, torch.zeros(len(content), dtype=torch.long))
        (parts["content"] + parts["style"].mean()).backward()

    return {"peer": flops_of(lambda: peer.step(batches[0])), "ours": flops_of(ours)}


def training_world(root: Path, args) -> tuple[list[torch.Tensor], Callable[[], PeerTraining]]:
    """Content photos and one style under ``root``, which both contenders train on: the peer's
    content batches, and a maker of the peer's loop with our loss network's random weights."""
    generate_posts(root / "content", num_posts=24, seed=0)
    generate_posts(root / "styles_1", num_posts=1, seed=1)
    batches = content_batches(root, args)
    style = 255 * load_image(find_images(root / "styles_1")[0], short_side=256)[None]
    vgg = our_module(root, 1, args)[0].loss_net.features  # the same random weights for both
    return batches, lambda: PeerTraining(style, torch.nn.Sequential(*vgg), args.batch_size)


def training(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        batches, peer_training = training_world(root, args)
        print(
            f"\ntraining step, {args.image_size} px, batch {args.batch_size}, VGG-16 to relu4_3 "
            f"(random weights), {args.steps} timed steps after {args.warmup}; medians of "
            f"{args.rounds} alternating rounds"
        )
        for count in args.threads:
            with threads(count):
                peer = peer_training()
                flops = step_flops(root, peer, batches, args)
                peak = conv_rate()
                times: dict[str, list[float]] = {"ours, 1 style": [], "ours, 9 styles": []}
                times["peer"] = []
                for round_ in range(args.rounds):
                    order = list(times) if round_ % 2 == 0 else list(reversed(times))
                    for name in order:
                        if name == "peer":
                            seconds = peer_seconds(peer, batches, args)
                        else:
                            module, data = our_module(root, 1 if "1 " in name else 9, args)
                            seconds = timed_fit(module, args.warmup, args.steps, datamodule=data)
                        times[name].append(seconds / args.steps)
            report(times, flops, peak, count)


def report(times: dict[str, list[float]], flops: dict, peak: float, count: int) -> None:
    step = {name: statistics.median(values) for name, values in times.items()}
    print(f"  {count} thread(s); 3x3 conv rate of this CPU {peak:.0f} GFLOP/s")
    for name, seconds in step.items():
        work = flops["peer" if name == "peer" else "ours"]
        rate = work / seconds / 1e9
        rounds = ", ".join(f"{s:.2f}" for s in times[name])
        print(
            f"    {name:15s} {seconds:6.2f} s/step  {seconds / step['peer']:5.2f}x peer  "
            f"{work / 1e9:5.0f} GFLOP, {rate:4.0f} GFLOP/s = {rate / peak:4.0%} of the conv rate"
            f"  [rounds {rounds}]"
        )
    one, nine = step["ours, 1 style"], step["ours, 9 styles"]
    verdict = "met" if one <= TARGET * step["peer"] and nine <= 1.05 * one else "NOT met"
    print(
        f"    targets: ours <= {TARGET}x peer, 9 styles <= 1.05x one: {one / step['peer']:.2f}x, "
        f"{nine / one:.3f}x, {verdict}"
    )


def stylize_latency(size: int, repeats: int) -> dict:
    """Median ms to stylize one ``size``² image with our default stylizer and with the peer's
    network, alternating, after one untimed call of each; our first call's ms and this
    process's peak RSS after our warm-up (before the peer ran)."""
    torch.manual_seed(0)
    stylizer, peer = Stylizer(num_styles=9).eval(), TransformerNet().eval()
    image, style = torch.rand(1, 3, size, size), torch.tensor([3])
    runs = {"ours": lambda: stylizer(image, style), "peer": lambda: peer(255 * image)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        start = time.perf_counter()
        runs["ours"]()
        first_ms = 1000 * (time.perf_counter() - start)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runs["peer"]()
        for round_ in range(repeats):
            for name in sorted(runs, reverse=round_ % 2 == 1):
                start = time.perf_counter()
                runs[name]()
                times[name].append(time.perf_counter() - start)
    ms = {name: 1000 * statistics.median(values) for name, values in times.items()}
    return {"size": size, **ms, "ours_first": first_ms, "peak_mb": peak_mb}


def latency(args) -> None:
    print(
        "\nstylize one image, ours vs the peer's TransformerNet (inference_mode, a fresh process "
        f"per size, warm-up excluded, medians of {args.latency_repeats} alternating calls):"
    )
    for count in args.threads:
        print(f"  {count} thread(s)")
        for size in args.sizes:
            child = [sys.executable, __file__, "--latency", str(size), "--threads", str(count)]
            child += ["--latency-repeats", str(args.latency_repeats)]
            result = subprocess.run(child, check=True, capture_output=True, text=True)
            row = json.loads(result.stdout.splitlines()[-1])
            print(
                f"    {size:5d} px  ours {row['ours']:7.0f} ms  peer {row['peer']:7.0f} ms  "
                f"{row['ours'] / row['peer']:.2f}x peer  |  our first call "
                f"{row['ours_first']:.0f} ms, peak RSS {row['peak_mb']:.0f} MB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024])
    parser.add_argument("--latency-repeats", type=int, default=7, help="timed calls of each")
    parser.add_argument(
        "--threads", type=int, nargs="*", default=sorted({torch.get_num_threads(), 1}, reverse=True)
    )
    parser.add_argument("--only", choices=["training", "latency"], help="one half of the run")
    parser.add_argument("--latency", type=int, help=argparse.SUPPRESS)  # one size, in a child
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("miro").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.latency:  # a fresh process per size, so peak memory is that size's own
        torch.set_num_threads(args.threads[0])
        print(json.dumps(stylize_latency(args.latency, args.latency_repeats)))
        return
    print(header("Fast style transfer: ours vs pytorch/examples' fast_neural_style, same process"))
    if args.only != "training":
        latency(args)
    if args.only != "latency":
        training(args)


if __name__ == "__main__":
    main()
