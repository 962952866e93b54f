"""Images/s of the Lightning training step (with its data loading) against a plain PyTorch loop.

Both train the same GoogLeNet encoder with the same loss, optimizer, batch size and
DataLoader over the same images, channels-last as ``python -m miro.train`` runs it (the
``channels_last`` callback; ``--nchw`` times both in NCHW instead); they alternate for
``--repeats`` rounds and the medians are compared. The DataLoader alone is timed too, to show
whether data loading is the bottleneck.

    python benchmarks/train_throughput.py --image-size 128 --batch-size 32
"""

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from step_timer import timed_fit
from timing import header

from data_pipeline.build import build_dataset
from data_pipeline.synthetic import generate_posts
from miro.lit.channels_last import ChannelsLast
from miro.lit.data import InstagramDataModule
from miro.lit.text_supervised import TextSupervisedEncoder
from miro.losses import SigmoidCrossEntropy
from miro.models.googlenet import GoogLeNetEncoder

CONF = Path(__file__).resolve().parents[1] / "conf"


def make_dataset(directory: Path, num_posts: int) -> Path:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        tokenizer = instantiate(compose("build").tokenizer)
    generate_posts(directory / "raw", num_posts=num_posts, seed=0)
    build_dataset(directory / "raw", directory / "dataset", tokenizer, progress=False)
    return directory / "dataset"


def make_datamodule(dataset: Path, cache: Path, args) -> InstagramDataModule:
    """The datamodule of ``+experiment=instagram_text``, at the benchmark's size and batch."""
    overrides = [
        "+experiment=instagram_text",
        f"data.dataset_dir={dataset}",
        f"data.cache_dir={cache}",
        f"data.image_size={args.image_size}",
        f"data.batch_size={args.batch_size}",
        f"data.num_workers={args.num_workers}",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        datamodule = instantiate(compose("train", overrides=overrides).data)
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule


def lightning_images_per_s(datamodule, args) -> float:
    torch.manual_seed(0)
    module = TextSupervisedEncoder(
        GoogLeNetEncoder(datamodule.text.dim),
        SigmoidCrossEntropy(),
        partial(torch.optim.AdamW, lr=1e-3),
    )
    callbacks = [] if args.nchw else [ChannelsLast()]
    seconds = timed_fit(
        module, args.warmup, args.steps, callbacks, train_dataloaders=datamodule.train_dataloader()
    )
    return args.steps * args.batch_size / seconds


def plain_images_per_s(datamodule, args) -> float:
    torch.manual_seed(0)
    model = GoogLeNetEncoder(datamodule.text.dim).train()
    if not args.nchw:
        model.to(memory_format=torch.channels_last)
    loss_fn = SigmoidCrossEntropy()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = datamodule.train_dataloader()  # one loader, as Lightning uses: workers persist
    step = 0
    while True:
        for images, targets, _ in loader:
            if step == args.warmup:
                start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(images), targets).backward()
            optimizer.step()
            step += 1
            if step == args.warmup + args.steps:
                return args.steps * args.batch_size / (time.perf_counter() - start)


def loader_images_per_s(datamodule, args) -> float:
    loader = datamodule.train_dataloader()
    count, start = 0, time.perf_counter()
    while count < args.steps * args.batch_size:
        for images, _, _ in loader:
            count += len(images)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="a built dataset (default: synthetic)")
    parser.add_argument("--num-posts", type=int, default=600)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nchw", action="store_true", help="both contenders in NCHW")
    args = parser.parse_args()
    print(header("Text-supervised GoogLeNet training: Lightning vs a plain loop"))
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset or make_dataset(Path(tmp), args.num_posts)
        datamodule = make_datamodule(dataset, Path(tmp) / "cache", args)
        loader = loader_images_per_s(datamodule, args)
        lightning, plain = [], []
        for _ in range(args.repeats):
            lightning.append(lightning_images_per_s(datamodule, args))
            plain.append(plain_images_per_s(datamodule, args))
    lightning_median, plain_median = statistics.median(lightning), statistics.median(plain)
    print(
        f"GoogLeNet {args.image_size}px batch {args.batch_size}, {args.steps} timed steps, "
        f"{args.repeats} rounds, torch threads {torch.get_num_threads()}, "
        f"{args.num_workers} loader workers"
    )
    print(f"data loader alone   {loader:8.1f} img/s")
    print(f"plain PyTorch loop  {plain_median:8.1f} img/s  (rounds: {_fmt(plain)})")
    print(f"Lightning step      {lightning_median:8.1f} img/s  (rounds: {_fmt(lightning)})")
    print(f"ratio Lightning / plain: {lightning_median / plain_median:.3f}")
    print(f"loader headroom over training: {loader / lightning_median:.1f}x")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
