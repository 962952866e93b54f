"""Is a bfloat16 dream the float32 dream? The same photo-sized noise image dreamed from the same
seed in both precisions, with random-weight GoogLeNet (inception4c) and VGG-16 (relu4_3); prints
the PSNR of the bfloat16 dream against the float32 one and how far the float32 dream moved from
its input. 30 dB or more would be the same picture to the eye; less is why float32 is the default
(``DreamSettings.precision``).

    python benchmarks/dream_parity.py
    python benchmarks/dream_parity.py --size 256 --octaves 4 --steps 10
"""

import argparse
import math

import torch
import torch.nn.functional as F
from timing import header

from miro.deepdream import DreamSettings, dream, googlenet, layer, noise_image, vgg16

NETWORKS = {"googlenet": (googlenet, "inception4c"), "vgg16": (vgg16, "relu4_3")}


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Peak signal-to-noise ratio of ``image`` against ``reference``, both in [0, 1], in dB."""
    return 10 * math.log10(1 / (image - reference).pow(2).mean().item())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--octaves", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    print(header("Is a bfloat16 dream the float32 dream? Same start, same seed"))
    torch.manual_seed(0)
    start = noise_image(args.size, args.size, seed=3)
    print(f"{'network':<10} {'PSNR bf16 vs fp32':>18} {'fp32 change':>12}")
    for name, (make, target) in NETWORKS.items():
        model = make(weights=None).eval()
        dreams = {
            precision: dream(
                model,
                start,
                layer(target),
                DreamSettings(octaves=args.octaves, steps=args.steps, precision=precision),
                seed=0,
            )
            for precision in ("float32", "bfloat16")
        }
        moved = (dreams["float32"] - F.interpolate(start, size=dreams["float32"].shape[-2:])).abs()
        similarity = psnr(dreams["bfloat16"], dreams["float32"])
        print(f"{name:<10} {similarity:>15.1f} dB {moved.mean().item():>12.4f}")


if __name__ == "__main__":
    main()
