"""What one image costs the GoogLeNet encoder of ``+experiment=instagram_text``: counted FLOPs,
operator launches, activation and parameter memory, and measured CPU time, forward and for a
whole training step (forward, sigmoid cross-entropy, backward, AdamW).

- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, a
  multiply-add counted as 2), forward alone and forward + backward of a training-mode batch.
- Operator calls: every ATen operator a training step dispatches (forward + backward, the
  optimizer apart); on a GPU each is at least one kernel launch, which bounds small batches.
- Activation memory: the bytes autograd keeps for backward (distinct storages packed by
  ``saved_tensors_hooks``), float32, per image; parameters, gradients and AdamW's two moments
  are 16 bytes a parameter.
- Peak memory: the growth of the process's resident set high-water mark (Linux ``VmHWM``)
  over the first training step, measured before anything else has run: only the first image
  size of a run gets this figure.
- Time: medians of ``--repeats`` rounds after one warm-up, wall and CPU seconds (on a shared
  machine the CPU seconds of a ``--threads 1`` run are the steadier figure).

    python benchmarks/encoder_cost.py                          # 224 px, batch 32
    python benchmarks/encoder_cost.py --image-sizes 64 128 224 --threads 1 --repeats 3
"""

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from miro.losses import SigmoidCrossEntropy
from miro.models.googlenet import GoogLeNetEncoder


def batch(batch_size: int, image_size: int, embed_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images in [0, 1] and topic-distribution targets."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size, 3, image_size, image_size, generator=generator)
    targets = torch.randn(batch_size, embed_dim, generator=generator).softmax(dim=1)
    return images, targets


def training_step(model, loss_fn, optimizer, images, targets) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss_fn(model(images), targets).backward()
    optimizer.step()


def status_kb(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``), kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def saved_activation_bytes(model, loss_fn, images, targets) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one forward pass."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = loss_fn(model(images), targets)
    loss.backward()
    return sum(storages.values())


class OperatorCounter(TorchDispatchMode):
    """Counts the ATen operators dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def timed(step, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``step()`` after one warm-up call."""
    step()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def measure(image_size: int, args, first: bool) -> None:
    torch.manual_seed(0)
    model = GoogLeNetEncoder(args.embed_dim).train()
    loss_fn = SigmoidCrossEntropy()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, targets = batch(args.batch_size, image_size, args.embed_dim)
    n = args.batch_size

    rss_before = status_kb("VmRSS")
    training_step(model, loss_fn, optimizer, images, targets)
    peak_growth_mb = (status_kb("VmHWM") - rss_before) / 1024

    with FlopCounterMode(display=False) as forward_flops:
        model(images)
    with FlopCounterMode(display=False) as step_flops:
        loss_fn(model(images), targets).backward()
    with OperatorCounter() as operators:
        loss_fn(model(images), targets).backward()
    activations = saved_activation_bytes(model, loss_fn, images, targets)
    parameters = sum(p.numel() for p in model.parameters())

    train_wall, train_cpu = timed(
        lambda: training_step(model, loss_fn, optimizer, images, targets), args.repeats
    )
    model.eval()

    def forward_only() -> None:
        with torch.inference_mode():
            model(images)

    forward_wall, forward_cpu = timed(forward_only, args.repeats)

    print(f"\nGoogLeNet encoder, {image_size} px, batch {n}, embed_dim {args.embed_dim}")
    print(f"  parameters                  {parameters / 1e6:8.2f} M")
    print(f"  forward FLOPs / image       {forward_flops.get_total_flops() / n / 1e9:8.3f} G")
    print(f"  fwd+bwd FLOPs / image       {step_flops.get_total_flops() / n / 1e9:8.3f} G")
    print(f"  ATen calls / training step  {operators.calls.total():8d} (forward + backward)")
    print(f"  saved activations / image   {activations / n / 2**20:8.2f} MiB (float32)")
    print(f"  params+grads+AdamW          {parameters * 16 / 2**20:8.1f} MiB")
    if first:
        print(f"  peak RSS growth, 1st step   {peak_growth_mb:8.1f} MiB (batch {n})")
    print(
        f"  training step / image       {train_wall / n * 1e3:8.1f} ms wall, "
        f"{train_cpu / n * 1e3:.1f} ms CPU  ({n / train_wall:.1f} img/s)"
    )
    print(
        f"  forward (eval) / image      {forward_wall / n * 1e3:8.1f} ms wall, "
        f"{forward_cpu / n * 1e3:.1f} ms CPU  ({n / forward_wall:.1f} img/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-sizes", type=int, nargs="+", default=[224])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--embed-dim", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    for i, image_size in enumerate(args.image_sizes):
        measure(image_size, args, first=i == 0)


if __name__ == "__main__":
    main()
