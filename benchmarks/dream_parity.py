"""Is a bfloat16 dream the float32 dream? The same photo-sized noise image dreamed from the same
seed in both precisions, with random-weight GoogLeNet (inception4c) and VGG-16 (relu4_3); prints
the PSNR of the bfloat16 dream against the float32 one, how far the float32 dream moved from its
input, and, as the yardstick of sameness, the PSNR between two float32 dreams that differ only
in torch's thread count (the same sums in another order). 30 dB or more would be the same
picture to the eye; less is why float32 is the default (``DreamSettings.precision``).

    python benchmarks/dream_parity.py
    python benchmarks/dream_parity.py --size 256 --octaves 4 --steps 10
"""

import argparse
import math
from functools import partial

import torch
import torch.nn.functional as F
from timing import header, threads

from miro.deepdream import DreamSettings, dream, googlenet, layer, noise_image, vgg16

NETWORKS = {"googlenet": (googlenet, "inception4c"), "vgg16": (vgg16, "relu4_3")}


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Peak signal-to-noise ratio of ``image`` against ``reference``, both in [0, 1], in dB."""
    return 10 * math.log10(1 / (image - reference).pow(2).mean().item())


def dreamed_in(model, start: torch.Tensor, objective, args, precision: str) -> torch.Tensor:
    settings = DreamSettings(octaves=args.octaves, steps=args.steps, precision=precision)
    return dream(model, start, objective, settings, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--octaves", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    print(header("Is a bfloat16 dream the float32 dream? Same start, same seed"))
    torch.manual_seed(0)
    start = noise_image(args.size, args.size, seed=3)
    columns = f"{'bf16 vs fp32':>13} {'fp32, 1 thread vs default':>26} {'fp32 change':>12}"
    print(f"{'network':<10} {columns}")
    for name, (make, target) in NETWORKS.items():
        model = make(weights=None).eval()
        objective = layer(target)
        dreamed = partial(dreamed_in, model, start, objective, args)
        exact, fast = dreamed("float32"), dreamed("bfloat16")
        with threads(1):
            one_thread = dreamed("float32")
        moved = (exact - F.interpolate(start, size=exact.shape[-2:])).abs().mean().item()
        print(
            f"{name:<10} {psnr(fast, exact):>10.1f} dB {psnr(one_thread, exact):>23.1f} dB "
            f"{moved:>12.4f}"
        )


if __name__ == "__main__":
    main()
