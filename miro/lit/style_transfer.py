"""LightningModule: one stylizer learns N painting styles (Dumoulin et al. 2017).

Each training image gets a random style; the loss is a content term (the stylized image keeps
the content's VGG features), a style term (its Gram matrices match those of its style image)
and a total-variation term, all from ``miro.losses`` on a frozen VGG-16 (``miro.models.vgg``).
Checkpoints hold the stylizer (``state_dict`` keys ``stylizer.*``; the loss network is left out)
and ``checkpoint["stylizer"]``: ``num_styles``, ``width``, ``num_residual``, ``style_names``,
which is all ``python -m miro.stylize`` needs.
"""

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import make_grid, save_image

from miro.imageio import ImagesNotFoundError, expand_image_paths, load_image
from miro.lit.data import DatasetNotFoundError
from miro.losses import content_loss, gram_matrix, style_loss, total_variation
from miro.models.stylizer import ResidualBlock, Stylizer
from miro.models.vgg import VGG16Features

log = logging.getLogger(__name__)


class StyleImagesNotFoundError(DatasetNotFoundError):
    """A style image of the configured style set is missing."""


class StyleTrainingDiverged(RuntimeError):
    """The losses became NaN or infinite, or the stylizer's outputs collapsed to flat images."""


def stylizer_config(stylizer: Stylizer, style_names: Sequence[str]) -> dict:
    """What rebuilds ``stylizer``: the ``checkpoint["stylizer"]`` contract, plain types only."""
    return {
        "num_styles": int(stylizer.num_styles),
        "width": int(stylizer.blocks[0].conv.out_channels),
        "num_residual": sum(isinstance(block, ResidualBlock) for block in stylizer.blocks),
        "style_names": [str(name) for name in style_names],
    }


def add_styles(state: dict[str, torch.Tensor], new_styles: int) -> dict[str, torch.Tensor]:
    """A stylizer state dict with ``new_styles`` more rows in every γ/β table, each new row the
    mean of the old ones (a new style starts from the average style)."""
    grown = dict(state)
    for key, table in state.items():
        if key.endswith((".gamma", ".beta")):
            grown[key] = torch.cat([table, table.mean(0, keepdim=True).expand(new_styles, -1)])
    return grown


class StyleTransferModule(pl.LightningModule):
    """Train a ``Stylizer`` on N styles at once with perceptual losses.

    Args:
        stylizer: ``(num_styles=, width=, num_residual=) → Stylizer`` (a partial); the module
            gives ``num_styles``, and when fine-tuning also the checkpoint's width and depth.
        loss_net: frozen VGG-16 taps; its ``layers`` must hold ``content_layer`` and
            ``style_layers``.
        style_images: style image files, folders (every image inside) or glob patterns.
        style_names: one name per style image; the file stems when None.
        content_weight, style_weight, tv_weight: weights of the content, style (per layer) and
            total-variation losses (VGG on ImageNet-normalized [0, 1] input; see ``miro.losses``).
        optimizer: ``params → Optimizer`` (a partial).
        style_image_size: short side, in pixels, style images are resized to for their Grams.
        content_layer, style_layers: the loss network taps of each loss.
        seed: seeds the style drawn for each training image (plus the rank under DDP).
        samples_dir: where each validation's sample grid is saved as ``epoch_<NNN>.png``.
        num_samples: validation images in the grid (rows), each in every style (columns).
        finetune_from: a checkpoint of this module; its styles are kept bit for bit and only
            the γ/β tables learn the new ``style_images``.
        collapse_std, collapse_patience: training stops when every output's per-channel std
            stays below ``collapse_std`` for ``collapse_patience`` steps in a row.

    Divergence (a NaN or infinite loss) and collapse are tracked on the device every step and
    checked on the host only where Lightning syncs anyway (every ``log_every_n_steps`` steps),
    before each validation and at the end of each epoch, so a step never waits for the GPU;
    the error names the step where it happened.
    """

    def __init__(
        self,
        stylizer: Callable[..., Stylizer],
        loss_net: VGG16Features,
        style_images: Sequence[str],
        style_names: Sequence[str] | None = None,
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        tv_weight: float = 0.0,
        optimizer: Callable | None = None,
        style_image_size: int = 256,
        content_layer: str = "relu3_3",
        style_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        seed: int = 0,
        samples_dir: str | None = None,
        num_samples: int = 4,
        finetune_from: str | None = None,
        collapse_std: float = 0.01,
        collapse_patience: int = 20,
    ) -> None:
        super().__init__()
        paths = self._style_paths(style_images)
        names = [path.stem for path in paths] if style_names is None else list(style_names)
        if len(names) != len(paths) or len(set(names)) != len(names):
            raise ValueError(f"need one distinct style name per style image, got {names}")
        if finetune_from is None:
            self.first_trained = 0
            self.stylizer = stylizer(num_styles=len(paths))
        else:
            self.stylizer, old_names = self._grow(stylizer, finetune_from, len(paths))
            if clash := sorted(set(old_names) & set(names)):
                raise ValueError(f"styles {clash} are already in {finetune_from}; rename them")
            self.first_trained, names = len(old_names), old_names + names
        self.style_names = names
        self.loss_net = loss_net
        self.content_layer, self.style_layers = content_layer, list(style_layers)
        self.content_weight, self.style_weight, self.tv_weight = (
            content_weight,
            style_weight,
            tv_weight,
        )
        # Factories, not hyper-parameters: checkpoints stay loadable with weights_only=True.
        self.optimizer_factory = optimizer or torch.optim.Adam
        self.seed = seed
        self.samples_dir = None if samples_dir is None else Path(samples_dir)
        self.num_samples = num_samples
        self.collapse_std, self.collapse_patience = collapse_std, collapse_patience

        images = [load_image(path, short_side=style_image_size) for path in paths]
        with torch.no_grad():
            grams = [loss_net(image[None], self.style_layers) for image in images]
        for layer in self.style_layers:  # (styles trained, C, C), computed once
            target = torch.cat([gram_matrix(g[layer]) for g in grams])
            self.register_buffer(f"gram_{layer}", target, persistent=False)
        self.thumbnails = [TF.center_crop(image, [min(image.shape[1:])]) for image in images]
        self.num_trained = len(paths)
        self._style_queue: list[int] = []
        self._generator: torch.Generator | None = None  # made per rank: spawn can't pickle one
        self._style_counts = [0] * self.num_trained  # images per style since the last log write
        self.register_buffer("_style_sums", torch.zeros(self.num_trained), persistent=False)
        self._health: dict[str, torch.Tensor] = {}  # divergence and collapse, on the device
        self._samples: list[list[torch.Tensor]] = []

    def forward(self, images: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1], style ids ``(B,)`` or mixing weights
        ``(B, num_styles)`` → stylized images ``(B, 3, H, W)`` in [0, 1]."""
        return self.stylizer(images, styles)

    def losses(
        self, content: torch.Tensor, styles: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stylize ``content`` in trained ``styles``; the outputs and the unweighted losses:
        ``content``, ``tv`` (scalars) and ``style`` per image ``(B,)``."""
        outputs = self.stylizer(content, styles)
        with torch.no_grad():
            target = self.loss_net(content, [self.content_layer])[self.content_layer]
        features = self.loss_net(outputs, self.style_layers)
        rows = styles - self.first_trained
        targets = {layer: getattr(self, f"gram_{layer}")[rows] for layer in self.style_layers}
        return outputs, {
            "content": content_loss(features[self.content_layer], target),
            "style": style_loss(features, targets),
            "tv": total_variation(outputs),
        }

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        drawn = self._draw_styles(len(batch))
        styles = drawn.to(self.device, non_blocking=True)
        outputs, parts = self.losses(batch, styles)
        weighted = {
            "content": self.content_weight * parts["content"],
            "style": self.style_weight * parts["style"].mean(),
            "tv": self.tv_weight * parts["tv"],
        }
        loss = weighted["content"] + weighted["style"] + weighted["tv"]
        self._track_health(weighted, loss, outputs.detach())

        size = len(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/content_loss", parts["content"], batch_size=size)
        self.log("train/style_loss", parts["style"].mean(), batch_size=size)
        self.log("train/tv_loss", parts["tv"], batch_size=size)
        self._log_per_style(drawn.tolist(), styles, parts["style"].detach())
        if self._log_written():
            self._check_health()
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.first_trained:  # fine-tuning: the old styles' rows never move
            tables = self.stylizer.norm_parameters()
            with torch.no_grad():
                for table, old_rows in zip(tables, self._frozen_rows, strict=True):
                    table[: self.first_trained] = old_rows

    def on_fit_start(self) -> None:
        self._generator = torch.Generator().manual_seed(self.seed + self.global_rank)
        self._style_queue.clear()
        self._style_counts = [0] * self.num_trained
        self._style_sums.zero_()
        self._health = {
            "bad_step": torch.tensor(-1, device=self.device),  # first non-finite loss
            "bad_values": torch.zeros(3, device=self.device),  # style, content, total there
            "flat_run": torch.tensor(0, device=self.device),  # flat steps in a row
            "collapse_step": torch.tensor(-1, device=self.device),  # where the run hit patience
        }
        tables = self.stylizer.norm_parameters()
        self._frozen_rows = [table[: self.first_trained].clone() for table in tables]

    def on_validation_start(self) -> None:
        if not self.trainer.sanity_checking:  # before a checkpoint can keep diverged weights
            self._check_health()

    def on_train_epoch_end(self) -> None:
        self._check_health()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        """Every validation image in every style: losses of the trained styles, and the first
        ``num_samples`` images in all styles for the sample grid."""
        keep = max(0, self.num_samples - sum(len(row[0]) for row in self._samples))
        row = [batch[:keep].cpu()]
        totals = {"content": 0.0, "style": 0.0, "tv": 0.0}
        for style in range(self.stylizer.num_styles):
            styles = torch.full((len(batch),), style, device=batch.device)
            if style < self.first_trained:  # inherited by a fine-tune: shown, not scored
                if keep:
                    row.append(self.stylizer(batch[:keep], styles[:keep]).cpu())
                continue
            outputs, parts = self.losses(batch, styles)
            row.append(outputs[:keep].cpu())
            name = self.style_names[style]
            self.log(
                f"val/style_loss/{name}",
                parts["style"].mean(),
                batch_size=len(batch),
                sync_dist=True,
            )
            for part, value in parts.items():
                totals[part] += value.mean() / self.num_trained
        if keep:
            self._samples.append(row)
        loss = (
            self.content_weight * totals["content"]
            + self.style_weight * totals["style"]
            + self.tv_weight * totals["tv"]
        )
        size = len(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val/content_loss", totals["content"], batch_size=size, sync_dist=True)
        self.log("val/style_loss", totals["style"], batch_size=size, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        samples, self._samples = self._samples, []
        if self.trainer.sanity_checking or not samples or not self.trainer.is_global_zero:
            return
        grid = self.sample_grid(samples)
        if self.samples_dir is not None:
            self.samples_dir.mkdir(parents=True, exist_ok=True)
            path = self.samples_dir / f"epoch_{self.current_epoch:03d}.png"
            save_image(grid, path)
            log.info("sample stylizations: %s", path)
        caption = "content, " + ", ".join(self.style_names)
        for logger in self.loggers:
            if hasattr(logger, "log_image"):  # W&B (and others that take images)
                image = grid.permute(1, 2, 0).mul(255).round().byte().numpy()
                logger.log_image("val/samples", [image], step=self.global_step, caption=[caption])

    def sample_grid(self, samples: list[list[torch.Tensor]]) -> torch.Tensor:
        """``(3, H, W)`` grid: a header row of style images (blank above the content column and
        above styles a fine-tune inherited), then each content image and its stylizations."""
        columns = [torch.cat(parts) for parts in zip(*samples, strict=True)]
        size = list(columns[0].shape[2:])
        header = [torch.ones(3, *size)] * (self.first_trained + 1)
        header += [TF.resize(t, size, antialias=True) for t in self.thumbnails]
        rows = [torch.stack(header)] + [torch.stack(list(r)) for r in zip(*columns, strict=True)]
        tiles = torch.cat(rows)
        return make_grid(tiles.clamp(0, 1), nrow=len(header), padding=2, pad_value=1.0)

    def configure_optimizers(self):
        trainable = [p for p in self.stylizer.parameters() if p.requires_grad]
        return self.optimizer_factory(trainable)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["stylizer"] = stylizer_config(self.stylizer, self.style_names)
        state = checkpoint["state_dict"]
        for key in [key for key in state if key.startswith("loss_net.")]:
            del state[key]  # frozen and reloadable from its weights: 30 MB not worth keeping

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        loss_net = {f"loss_net.{k}": v for k, v in self.loss_net.state_dict().items()}
        checkpoint["state_dict"].update(loss_net)

    def _draw_styles(self, count: int) -> torch.Tensor:
        """Random trained styles (on the CPU), drawn from shuffled rounds of all of them: every
        style is seen as often as the others, and from the first steps."""
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed)
        while len(self._style_queue) < count:
            order = torch.randperm(self.num_trained, generator=self._generator)
            self._style_queue += (order + self.first_trained).tolist()
        drawn, self._style_queue = self._style_queue[:count], self._style_queue[count:]
        drawn = torch.tensor(drawn)
        return drawn.pin_memory() if self.device.type == "cuda" else drawn  # copied async

    def _log_written(self) -> bool:
        """Whether the logger writes this step's values (Lightning's rule for training steps)."""
        return (self.global_step + 1) % max(1, self.trainer.log_every_n_steps) == 0

    def _log_per_style(self, drawn: list[int], styles: torch.Tensor, per_image: torch.Tensor):
        """Log each style's mean loss over the steps since the logger last wrote, so every
        style has a value at every logged step although a batch holds only a few styles. The
        sums stay on the device; the counts come from the styles drawn on the host."""
        self._style_sums.index_add_(0, styles - self.first_trained, per_image.float())
        for style in drawn:
            self._style_counts[style - self.first_trained] += 1
        for row, count in enumerate(self._style_counts):
            if count:
                name = self.style_names[row + self.first_trained]
                mean = self._style_sums[row] / count
                self.log(f"train/style_loss/{name}", mean, batch_size=len(drawn))
        if self._log_written():
            self._style_sums.zero_()
            self._style_counts = [0] * self.num_trained

    def _track_health(
        self, weighted: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor
    ) -> None:
        """Record, on the device, the first step with a non-finite loss and the step where the
        outputs had been flat for ``collapse_patience`` steps in a row."""
        health, step = self._health, self.global_step
        values = torch.stack([weighted["style"], weighted["content"], loss]).detach().float()
        first_bad = (health["bad_step"] < 0) & ~torch.isfinite(values).all()
        health["bad_step"] = torch.where(first_bad, step, health["bad_step"])
        health["bad_values"] = torch.where(first_bad, values, health["bad_values"])
        flat = outputs.std(dim=(2, 3)).max() < self.collapse_std
        health["flat_run"] = (health["flat_run"] + 1) * flat
        collapsed = (health["collapse_step"] < 0) & (health["flat_run"] >= self.collapse_patience)
        health["collapse_step"] = torch.where(collapsed, step, health["collapse_step"])

    def _check_health(self) -> None:
        """Stop with the knobs to turn if training diverged or the outputs went flat."""
        if not self._health:
            return
        health = self._health
        steps = torch.stack([health["bad_step"], health["collapse_step"]])
        (bad_step, collapse_step), values = steps.tolist(), health["bad_values"].tolist()
        knobs = {
            "style": f"module.style_weight (now {self.style_weight:g})",
            "content": f"module.content_weight (now {self.content_weight:g})",
            "total": f"module.tv_weight (now {self.tv_weight:g})",
        }
        for (name, knob), value in zip(knobs.items(), values, strict=True):
            if bad_step >= 0 and not math.isfinite(value):
                raise StyleTrainingDiverged(
                    f"the weighted {name} loss became {value} at step {bad_step}: lower {knob} "
                    "or the learning rate module.optimizer.lr, and check the style images "
                    "decode to real pictures"
                )
        if collapse_step >= 0:
            raise StyleTrainingDiverged(
                f"the stylized images collapsed to flat colour (every output's per-channel std "
                f"< {self.collapse_std:g} for {self.collapse_patience} steps in a row, by step "
                f"{collapse_step}): lower module.style_weight (now {self.style_weight:g}) or "
                f"module.tv_weight (now {self.tv_weight:g}), or raise module.content_weight (now "
                f"{self.content_weight:g}); and check the content images are not blank"
            )

    @staticmethod
    def _style_paths(style_images: Sequence[str]) -> list[Path]:
        try:
            return [path.resolve() for path in expand_image_paths(style_images)]
        except ImagesNotFoundError as err:
            folders = sorted({str(Path(m).parent) for m in err.missing})
            raise StyleImagesNotFoundError(
                f"style image(s) not found: {', '.join(err.missing)}. Put the paintings into "
                f"{', '.join(folders)} under those names (any JPEG/PNG of each work), point "
                "style_set.dir=FOLDER at where they are, or train on your own paintings with "
                "style_set.images=[a.jpg,b.jpg] (files, folders or globs). Offline demo styles: "
                "python -m data_pipeline.synthetic out=data/demo/styles num_posts=3 seed=1, "
                "then style_set=synthetic"
            ) from None

    def _grow(
        self, stylizer: Callable[..., Stylizer], checkpoint: str, new_styles: int
    ) -> tuple[Stylizer, list[str]]:
        """The checkpoint's stylizer with ``new_styles`` more styles, all but its γ/β frozen."""
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if "stylizer" not in saved:
            raise ValueError(f"{checkpoint} is not a stylizer checkpoint (no 'stylizer' entry)")
        config = saved["stylizer"]
        old_names = list(config["style_names"])
        model = stylizer(
            num_styles=len(old_names) + new_styles,
            width=config["width"],
            num_residual=config["num_residual"],
        )
        prefix = "stylizer."
        state = {
            k[len(prefix) :]: v for k, v in saved["state_dict"].items() if k.startswith(prefix)
        }
        model.load_state_dict(add_styles(state, new_styles))
        model.requires_grad_(False)
        for table in model.norm_parameters():
            table.requires_grad_(True)
        return model, old_names
