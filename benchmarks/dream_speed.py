"""DeepDream speed on this machine: seconds to dream a 512 px image (4 octaves × 10 steps, scale
1.4) with GoogLeNet (inception4c) and VGG-16 (relu4_3), random weights, against a same-run
baseline; where one gradient step's time goes; and the peak memory of dreaming a 2048 px image
in 512 px tiles.

The baseline re-implements, in our words, the loop of gordicaleksa/pytorch-deepdream (the peer
in shared/PERFORMANCE.md): the whole torchvision network runs forward every step, the layer is
caught by a forward hook, the loss is its mean square, batch norm stays unfolded, contiguous
float32 tensors, gradient normalized by its standard deviation, no tiling; its image pyramid
has our octave sizes. Its Gaussian smoothing of the gradient is left out, so the baseline is if
anything faster than the peer. Ours and the baseline alternate within each round; medians.

Every time is reported twice: wall seconds, and the process's CPU seconds. On a machine that
other jobs share, wall time swings with their load (OpenMP threads wait for each other); CPU
time of a single-threaded run (``--threads 1``) barely does, so its ratios are the ones to
trust there.

Peak memory: each 2048 px dream runs in a fresh subprocess, which reports its peak resident set
size (Linux ``VmHWM``: Python, torch, the model and the dream) and the peak before dreaming.
Peak memory does not depend on the number of steps, so that run does one step per octave.

    python benchmarks/dream_speed.py                       # both models, 3 rounds
    python benchmarks/dream_speed.py --models googlenet --rounds 5 --threads 1
"""

import argparse
import copy
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torchvision.models import GoogLeNet, vgg16

from miro.deepdream import DreamSettings, dream, googlenet, layer, noise_image
from miro.deepdream import vgg16 as dream_vgg16
from miro.deepdream.models import GoogLeNetDream, PooledHead, VGG16Dream
from miro.deepdream.octaves import compute_dtype, octave_sizes
from miro.deepdream.tiling import objective_gradient

PEER_SECONDS = {"googlenet": 7.8, "vgg16": 52.0}  # shared/PERFORMANCE.md, 2 threads
LAYERS = {"googlenet": "inception4c", "vgg16": "relu4_3"}
VGG_RELU4_3 = 22  # its index in torchvision's vgg16().features
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def networks(kind: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The baseline's whole torchvision network and our dream model, with the same weights."""
    torch.manual_seed(0)
    if kind == "googlenet":
        full = GoogLeNet(aux_logits=False, transform_input=False, init_weights=True).eval()
        net = copy.deepcopy(full)
        ours = GoogLeNetDream(net, PooledHead(net.fc))
    else:
        full = vgg16().eval()
        ours = VGG16Dream(copy.deepcopy(full.features))
    return full.requires_grad_(False), ours


def tapped_layer(full: torch.nn.Module, kind: str) -> torch.nn.Module:
    return full.inception4c if kind == "googlenet" else full.features[VGG_RELU4_3]


def baseline_gradient(full: torch.nn.Module, kind: str, images: torch.Tensor) -> torch.Tensor:
    """The peer's gradient: the whole network forward, the layer caught by a hook."""
    caught = {}
    hook = tapped_layer(full, kind).register_forward_hook(
        lambda _, __, output: caught.update(out=output)
    )
    try:
        images = images.detach().clone().requires_grad_(True)
        full((images - MEAN) / STD)
        caught["out"].square().mean().backward()
    finally:
        hook.remove()
    return images.grad


def baseline_dream(full, kind: str, images: torch.Tensor, octaves: int, scale: float, steps: int):
    """The peer's loop (see the module docstring): std-normalized gradient steps of 1.5/255 on
    [0, 1] images (its 0.09 on ImageNet-normalized images is about the same)."""
    generator = torch.Generator().manual_seed(0)
    image = images.clone()
    for size in octave_sizes(*images.shape[-2:], octaves, scale):
        image = F.interpolate(image, size=size, mode="bilinear").clamp(0, 1)
        for _ in range(steps):
            dy, dx = torch.randint(-32, 33, (2,), generator=generator).tolist()
            grad = baseline_gradient(full, kind, image.roll((dy, dx), (2, 3)))
            grad = ((grad - grad.mean()) / grad.std()).roll((-dy, -dx), (2, 3))
            image = (image + 1.5 / 255 * grad).clamp(0, 1)
    return image


def timed(function) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``function()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def alternate(contenders: dict, rounds: int, label: str) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each contender, run in turn ``rounds`` times."""
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            times[name].append(timed(run))
            wall, cpu = times[name][-1]
            print(f"  {label} {name}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in times.items()
    }


def speed(kind: str, args) -> dict[str, tuple[float, float]]:
    """The whole dream: baseline, ours in float32, ours (bfloat16 where native)."""
    full, ours = networks(kind)
    image = noise_image(args.size, args.size, seed=0)
    objective = layer(LAYERS[kind])
    settings = DreamSettings(args.octaves, args.scale, args.steps)
    exact = replace(settings, precision="float32")
    contenders = {
        "baseline": lambda: baseline_dream(full, kind, image, args.octaves, args.scale, args.steps),
        "ours_float32": lambda: dream(ours, image, objective, exact),
        "ours": lambda: dream(ours, image, objective, settings),
    }
    warm = image[..., :128, :128]  # warm-up: allocator, oneDNN kernels
    baseline_dream(full, kind, warm, args.octaves, args.scale, 1)
    for each in (settings, exact):
        dream(ours, warm, objective, replace(each, steps=1))
    return alternate(contenders, args.rounds, kind)


def step_ablation(kind: str, args) -> dict[str, tuple[float, float]]:
    """One gradient step on a ``--size`` image, adding one change at a time: the baseline's
    whole network, stopping at the layer, folding batch norm (GoogLeNet), channels-last,
    bfloat16."""
    full, ours = networks(kind)
    objective = layer(LAYERS[kind])
    image = noise_image(args.size, args.size, seed=0)
    unfolded = ours
    if kind == "googlenet":
        with mock.patch("miro.deepdream.models.fold_batch_norms", lambda net: net):
            unfolded = networks(kind)[1]

    def ours_step(model, memory_format, dtype) -> None:
        model.to(memory_format=memory_format)
        objective_gradient(model, objective, image, None, memory_format, dtype)

    contiguous, last = torch.contiguous_format, torch.channels_last
    variants = {"whole network (baseline)": lambda: baseline_gradient(full, kind, image)}
    variants["+ stop at the layer"] = lambda: ours_step(unfolded, contiguous, torch.float32)
    if kind == "googlenet":
        variants["+ fold batch norm"] = lambda: ours_step(ours, contiguous, torch.float32)
    variants["+ channels-last"] = lambda: ours_step(ours, last, torch.float32)
    variants["+ bfloat16 (ours)"] = lambda: ours_step(ours, last, torch.bfloat16)
    for run in variants.values():
        run()  # warm-up
    return alternate(variants, args.step_repeats, f"{kind} step")


def peak_rss_mb() -> float:
    """This process's peak resident set size: ``VmHWM``, which starts afresh at ``exec`` (unlike
    ``ru_maxrss``, which keeps the parent's size from before the fork)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(kind: str, size: int, tile_size: int) -> dict:
    """In a fresh process: peak RSS of a tiled dream of a ``size``² image, 1 step per octave."""
    model = googlenet(weights=None) if kind == "googlenet" else dream_vgg16(weights=None)
    image = noise_image(size, size, seed=0)
    before = peak_rss_mb()
    settings = DreamSettings(steps=1, tile_size=tile_size)
    wall, _ = timed(lambda: dream(model, image, layer(LAYERS[kind]), settings))
    return {"before_mb": before, "peak_mb": peak_rss_mb(), "seconds": wall}


def peak_memory(kind: str, args) -> dict:
    command = [sys.executable, __file__, "--memory", kind, "--threads", str(args.threads)]
    command += ["--memory-size", str(args.memory_size), "--tile-size", str(args.tile_size)]
    child = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(child.stdout.splitlines()[-1])


def report(kind: str, args, ablation: dict, result: dict, mem: dict) -> None:
    print(
        f"\n{kind} ({LAYERS[kind]}), one gradient step at {args.size} px, medians of "
        f"{args.step_repeats}:"
    )
    first_wall, first_cpu = next(iter(ablation.values()))
    for name, (wall, cpu) in ablation.items():
        print(
            f"  {name:26s} {1000 * wall:7.0f} ms wall ({wall / first_wall:.2f}x)   "
            f"{1000 * cpu:7.0f} ms CPU ({cpu / first_cpu:.2f}x)"
        )
    print(
        f"{kind}: dream {args.size} px, {args.octaves} octaves x {args.steps} steps, scale "
        f"{args.scale}; medians of {args.rounds} rounds:"
    )
    base_wall, base_cpu = result["baseline"]
    peer = PEER_SECONDS[kind]
    for name, (wall, cpu) in result.items():
        print(
            f"  {name:13s} {wall:7.2f} s wall ({wall / base_wall:.2f}x baseline, "
            f"{wall / peer:.2f}x peer's {peer} s)   {cpu:7.2f} s CPU ({cpu / base_cpu:.2f}x)"
        )
    print(
        f"{kind}: {args.memory_size} px in {args.tile_size} px tiles: peak RSS "
        f"{mem['peak_mb']:.0f} MB ({mem['before_mb']:.0f} MB before dreaming; 4 octaves x 1 "
        f"step took {mem['seconds']:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["googlenet", "vgg16"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--octaves", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--step-repeats", type=int, default=5, help="rounds of the step ablation")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--memory-size", type=int, default=2048)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--memory", help=argparse.SUPPRESS)  # one model, in a child process
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("miro").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    if args.memory:
        print(json.dumps(memory(args.memory, args.memory_size, args.tile_size)))
        return
    dtype = compute_dtype("auto", torch.device("cpu"))
    print(f"torch {torch.__version__}, {args.threads} threads; 'ours' runs in {dtype}")
    for kind in args.models:
        ablation = step_ablation(kind, args)
        result = speed(kind, args)
        report(kind, args, ablation, result, peak_memory(kind, args))


if __name__ == "__main__":
    main()
