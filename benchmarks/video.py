"""Flicker and speed of video stylization (and dreaming), per frame against temporal.

Makes the synthetic clip (``data_pipeline.synthetic.clip``: a slow pan and zoom over a Miró-like
picture, with sound), stylizes it with every frame alone (``temporal.weight=0``) and with the
temporal blend (``conf/stylize.yaml``'s ``temporal.weight`` unless ``--weight``), through the
same ``stylize_path`` the command runs, and prints for each the warping error of Lai et al.,
"Learning Blind Video Temporal Consistency" (ECCV 2018; ``miro.video.warping_error``, read back
from the written files) and frames/s (median of alternating rounds). Targets: the temporal
mode cuts the warping error by at least 2x at no more than 1.5x the per-frame time. The same
for the dream video (``conf/dream.yaml``'s per-frame settings) unless ``--no-dream``, with the
encoder of ``make demo`` (``--encoder``); a GoogLeNet of random weights, the fallback, changes a
frame so little that there is hardly any flicker to cut.

The stylizer is ``--ckpt``, or one trained here for ``--steps`` steps at 64 px with a VGG-16 of
random weights on synthetic styles (as the other benchmarks do): enough to paint textures that
flicker.

    python benchmarks/video.py
    python benchmarks/video.py --ckpt last.ckpt --frames 96 --size 256 --sweep 0.5 0.6 0.7 0.8
"""

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from timing import ROOT, alternate, header

from data_pipeline.synthetic import GeneratorSettings, generate_posts
from data_pipeline.synthetic.clip import write_clip
from miro.deepdream import googlenet, text_encoder
from miro.deepdream.run import DreamJob, run_dream
from miro.style.run import stylize_path
from miro.video import TemporalSettings, read_frames, warping_error

CONF = ROOT / "conf"
DEMO_ENCODER = ROOT / "outputs" / "demo" / "encoder" / "checkpoints" / "last.ckpt"
ERROR_TARGET, TIME_TARGET = 2.0, 1.5


def train_stylizer(root: Path, steps: int) -> Path:
    """A 2-style stylizer after ``steps`` steps of ``+experiment=miro_style`` (64 px, random
    VGG-16 weights, synthetic styles and content), saved as a checkpoint."""
    styles, content = root / "styles", root / "content"
    generate_posts(styles, num_posts=2, seed=1, settings=GeneratorSettings(min_motifs=3))
    generate_posts(content, num_posts=16, seed=0)
    overrides = [
        "+experiment=miro_style",
        "style_set=synthetic",
        f"style_set.dir={styles}",
        f"data.image_dir={content}",
        "data.image_size=64",
        "data.num_workers=0",
        "model.loss_net.weights=null",
        "module.style_image_size=128",
        f"paths.root_dir={root}",
        f"paths.output_dir={root / 'run'}",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    pl.seed_everything(0)
    module = instantiate(cfg.module)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=instantiate(cfg.data))
    trainer.save_checkpoint(root / "stylizer.ckpt")
    return root / "stylizer.ckpt"


def flicker(clip: Path, written: Path) -> float:
    return warping_error(read_frames(clip), read_frames(written))


def compare(name: str, runs: dict, clip: Path, rounds: int) -> None:
    """Time ``runs`` (per-frame, temporal: each returns the file it wrote), then print their
    warping errors, frames/s, ratios and whether the targets are met."""
    written = {label: run() for label, run in runs.items()}  # warm-up, and the files to score
    timings = alternate(runs, rounds)
    frames = sum(1 for _ in read_frames(clip))
    errors = {label: flicker(clip, path) for label, path in written.items()}
    print(f"\n{name}: {frames} frames, {rounds} rounds, median wall time")
    print(f"  {'':10s} {'warping error':>14s} {'frames/s':>9s}")
    for label in runs:
        print(f"  {label:10s} {errors[label]:14.6f} {frames / timings[label].wall:9.2f}")
    cut = errors["per-frame"] / max(errors["temporal"], 1e-12)
    slower = timings["temporal"].wall / timings["per-frame"].wall
    met = cut >= ERROR_TARGET and slower <= TIME_TARGET
    print(
        f"  warping error cut {cut:.2f}x (target >= {ERROR_TARGET}x), time {slower:.2f}x "
        f"per-frame's (target <= {TIME_TARGET}x): {'met' if met else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", help="a stylizer checkpoint (default: train a tiny one)")
    parser.add_argument("--steps", type=int, default=60, help="training steps of the tiny one")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, default=128, help="side of the clip's frames")
    parser.add_argument("--weight", type=float, help="temporal.weight (default: the config's)")
    parser.add_argument("--sweep", type=float, nargs="*", default=[], help="also these weights")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-dream", action="store_true", help="skip the dream video")
    parser.add_argument(
        "--encoder",
        default=str(DEMO_ENCODER),
        help="the encoder checkpoint to dream with (default: make demo's; without it, a "
        "GoogLeNet of random weights, which barely dreams)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    stylize_conf = OmegaConf.load(CONF / "stylize.yaml").temporal
    dream_conf = OmegaConf.load(CONF / "dream.yaml")
    weight = stylize_conf.weight if args.weight is None else args.weight
    print(header("video: per-frame vs temporal stylization and dreams"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = write_clip(root / "clip.mp4", frames=args.frames, size=args.size, seed=0)
        ckpt = args.ckpt or train_stylizer(root, args.steps)
        print(
            f"clip: {args.frames} frames of {args.size} px, pan and zoom; stylizer: "
            f"{args.ckpt or f'trained here, {args.steps} steps'}; temporal.weight={weight}, "
            f"flow {stylize_conf.flow}"
        )

        def stylizing(weight: float, folder: str):
            def run() -> Path:
                temporal = TemporalSettings(weight, stylize_conf.flow)
                stylize_path(
                    ckpt,
                    clip,
                    root / folder,
                    style=0,
                    max_size=None,
                    progress=False,
                    temporal=temporal,
                )
                return root / folder / "clip_stylized.mp4"

            return run

        runs = {"per-frame": stylizing(0.0, "single"), "temporal": stylizing(weight, "temporal")}
        compare("stylize", runs, clip, args.rounds)
        single = list(read_frames(root / "single" / "clip_stylized.mp4"))
        for swept in args.sweep:  # a weight's cost: how far its frames stray from the network's
            path = stylizing(swept, f"sweep{swept}")()
            pairs = zip(read_frames(path), single, strict=True)
            stray = sum((a - b).abs().mean().item() for a, b in pairs)
            print(
                f"  temporal.weight={swept}: warping error {flicker(clip, path):.6f}, mean "
                f"|temporal - per-frame| {stray / len(single):.4f}"
            )
        if not args.no_dream:
            trained = Path(args.encoder).is_file()
            model = text_encoder(args.encoder) if trained else googlenet(weights=None)
            dreamer = f"encoder {args.encoder}" if trained else "GoogLeNet (random weights)"

            def dreaming(weight: float, folder: str):
                def run() -> Path:
                    temporal = TemporalSettings(weight, dream_conf.temporal.flow)
                    job = DreamJob(
                        root / folder,
                        input=str(clip),
                        video=dict(dream_conf.video),
                        temporal=temporal,
                        progress=False,
                    )
                    return run_dream(model, job)[0]

                return run

            dream_weight = dream_conf.temporal.weight
            print(
                f"\ndreamer: {dreamer}, {dict(dream_conf.video)} per frame, "
                f"temporal.weight={dream_weight}"
            )
            runs = {"per-frame": dreaming(0.0, "d0"), "temporal": dreaming(dream_weight, "d1")}
            compare("dream", runs, clip, args.rounds)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
