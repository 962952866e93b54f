"""DeepDream speed against gordicaleksa/pytorch-deepdream, in the same process: seconds to dream
a 512 px image (4 octaves × 10 steps, scale 1.4) with GoogLeNet (inception4c) and VGG-16
(relu4_3), random weights (the same in both), at torch's default thread count and at one
thread; the arithmetic rate each loop reaches against this CPU's 3×3 convolution rate; and the
peak memory of dreaming a 2048 px image in 512 px tiles.

The peer's loop is re-implemented in ``peer_deepdream.py`` (its network cuts, normalization,
smoothing, step rule). Ours runs ``miro.deepdream.dream`` in float32 (the default) and, where
the CPU computes bfloat16 natively, in bfloat16 (an opt-in: ``benchmarks/dream_parity.py`` says
how far its dream is from the float32 one). Contenders alternate within each round; medians.
Wall time is the figure; CPU time is printed beside it because on a shared machine it is
disturbed less.

    python benchmarks/dream_speed.py                         # both models, 3 rounds
    python benchmarks/dream_speed.py --models vgg16 --rounds 5 --threads 1
"""

import argparse
import copy
import json
import logging
import resource
import subprocess
import sys
import warnings
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from peer_deepdream import PeerGoogLeNet, PeerVGG16, gradient_ascent, peer_dream
from timing import alternate, conv_rate, flops_of, header, threads
from torchvision.models import GoogLeNet, vgg16

from miro.deepdream import DreamSettings, dream, googlenet, layer, noise_image
from miro.deepdream import vgg16 as dream_vgg16
from miro.deepdream.models import GoogLeNetDream, PooledHead, VGG16Dream
from miro.deepdream.octaves import octave_sizes
from miro.devices import native_bfloat16

LAYERS = {"googlenet": "inception4c", "vgg16": "relu4_3"}
TARGETS = {"googlenet": 0.45, "vgg16": 0.65}  # float32 dream time / the peer's, same run


def networks(kind: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The peer's network and our dream model, with the same random weights."""
    torch.manual_seed(0)
    if kind == "googlenet":
        net = GoogLeNet(aux_logits=False, transform_input=True, init_weights=True).eval()
        ours = copy.deepcopy(net)
        return PeerGoogLeNet(net), GoogLeNetDream(ours, PooledHead(ours.fc))
    features = vgg16().features.eval()
    return PeerVGG16(copy.deepcopy(features)), VGG16Dream(features)


def our_gradient(model, name: str, image: torch.Tensor) -> None:
    """What ``objective_gradient`` computes, with ``backward`` (torch's flop counter cannot
    follow ``torch.autograd.grad``)."""
    layer(name)(model(image, [name])).sum().backward()


def dream_flops(kind: str, peer, ours, args) -> dict[str, int]:
    """Floating-point operations of one whole dream, by each loop (steps × every octave)."""
    totals = {"peer": 0, "ours": 0}
    name = LAYERS[kind]
    for size in octave_sizes(args.size, args.size, args.octaves, args.scale):
        image = noise_image(*size, seed=0)
        peer_step = partial(gradient_ascent, peer, [name], image.clone().requires_grad_(), 0, 1)
        our_step = partial(our_gradient, ours, name, image.clone().requires_grad_())
        totals["peer"] += flops_of(peer_step)
        totals["ours"] += flops_of(our_step)
    return {key: args.steps * value for key, value in totals.items()}


def speed(kind: str, args) -> None:
    peer, ours = networks(kind)
    image = noise_image(args.size, args.size, seed=0)
    objective, name = layer(LAYERS[kind]), LAYERS[kind]
    settings = DreamSettings(args.octaves, args.scale, args.steps, precision="float32")
    bf16 = replace(settings, precision="bfloat16")
    contenders = {
        "peer": lambda: peer_dream(peer, [name], image, args.octaves, args.scale, args.steps),
        "ours float32": lambda: dream(ours, image, objective, settings),
    }
    native = native_bfloat16(torch.device("cpu"))  # emulated, it runs at a tenth of the speed
    if native:
        contenders["ours bfloat16"] = lambda: dream(ours, image, objective, bf16)
    flops = dream_flops(kind, peer, ours, args)
    print(
        f"\n{kind} {name}: dream {args.size} px, {args.octaves} octaves x {args.steps} steps, "
        f"scale {args.scale}; medians of {args.rounds} alternating rounds. "
        f"GFLOP per dream: peer {flops['peer'] / 1e9:.0f}, ours {flops['ours'] / 1e9:.0f}"
    )
    if not native:
        print("  no bfloat16 row: this CPU has no native bfloat16 arithmetic")
    for count in args.threads:
        with threads(count):
            peak = conv_rate()
            for run in contenders.values():  # warm-up: allocator, oneDNN kernels
                run()
            times = alternate(contenders, args.rounds)
        base = times["peer"]
        print(f"  {count} thread(s); 3x3 conv rate of this CPU {peak:.0f} GFLOP/s")
        for label, timing in times.items():
            work = flops["peer" if label == "peer" else "ours"]
            rate = work / timing.wall / 1e9
            rounds = ", ".join(f"{t:.2f}" for t in timing.rounds)
            print(
                f"    {label:14s} {timing.wall:7.2f} s  {timing.wall / base.wall:5.2f}x peer  "
                f"(CPU {timing.cpu / base.cpu:5.2f}x)  {rate:4.0f} GFLOP/s = "
                f"{rate / peak:4.0%} of the conv rate  [rounds {rounds}]"
            )
        ratio = times["ours float32"].wall / base.wall
        verdict = "met" if ratio <= TARGETS[kind] else "NOT met"
        print(f"    target float32 <= {TARGETS[kind]}x peer: {ratio:.2f}x, {verdict}")


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
    dream(model, image, layer(LAYERS[kind]), DreamSettings(steps=1, tile_size=tile_size))
    return {"before_mb": before, "peak_mb": peak_rss_mb()}


def peak_memory(kind: str, args) -> None:
    command = [sys.executable, __file__, "--memory", kind]
    command += ["--memory-size", str(args.memory_size), "--tile-size", str(args.tile_size)]
    child = subprocess.run(command, check=True, capture_output=True, text=True)
    mem = json.loads(child.stdout.splitlines()[-1])
    print(
        f"  {kind}: {args.memory_size} px in {args.tile_size} px tiles: peak RSS "
        f"{mem['peak_mb']:.0f} MB ({mem['before_mb']:.0f} MB before dreaming)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["googlenet", "vgg16"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--octaves", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, nargs="*", default=sorted({torch.get_num_threads(), 1}, reverse=True)
    )
    parser.add_argument("--memory-size", type=int, default=2048)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--no-memory", action="store_true", help="skip the 2048 px memory run")
    parser.add_argument("--memory", help=argparse.SUPPRESS)  # one model, in a child process
    args = parser.parse_args()
    logging.getLogger("miro").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.memory:
        print(json.dumps(memory(args.memory, args.memory_size, args.tile_size)))
        return
    print(header("DeepDream: ours vs gordicaleksa/pytorch-deepdream's loop, same process"))
    for kind in args.models:
        speed(kind, args)
    if not args.no_memory:
        print("\npeak memory of a tiled dream (a fresh process each):")
        for kind in args.models:
            peak_memory(kind, args)


if __name__ == "__main__":
    main()
