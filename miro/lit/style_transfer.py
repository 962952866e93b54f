"""LightningModule: one stylizer learns N painting styles (Dumoulin et al. 2017).

Each training image gets a random style; the loss is a content term (the stylized image keeps
the content's VGG features), a style term (its Gram matrices match those of its style image)
and a total-variation term, all from ``miro.losses`` on a frozen VGG-16 (``miro.models.vgg``).
Checkpoints hold the stylizer (``state_dict`` keys ``stylizer.*``; the loss network is left out)
and ``checkpoint["stylizer"]``: ``num_styles``, ``width``, ``num_residual``, ``style_names``,
which is all ``python -m miro.stylize`` needs (``miro.models.checkpoints`` reads them). The
sample grids and the divergence watchdog are callbacks (``miro.lit.style_callbacks``).
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torchvision.transforms.v2 import functional as TF

from data_pipeline.manifest import DatasetNotFoundError
from miro.devices import compute_dtype
from miro.images import ImagesNotFoundError, expand_image_paths, load_image
from miro.losses import content_loss, gram_matrix, style_loss, total_variation
from miro.models.checkpoints import load_stylizer, stylizer_config
from miro.models.stylizer import Stylizer, add_styles
from miro.models.vgg import VGG16Features


class StyleImagesNotFoundError(DatasetNotFoundError):
    """A style image of the configured style set is missing."""


class StyleTransferModule(pl.LightningModule):
    """Train a ``Stylizer`` on N styles at once with perceptual losses.

    Args:
        stylizer: ``(num_styles=, width=, num_residual=, separable=) → Stylizer`` (a
            partial); the module gives ``num_styles``, and when fine-tuning also the
            checkpoint's width, depth and kind of residual block.
        loss_net: frozen VGG-16 taps; its ``layers`` must hold ``content_layer`` and
            ``style_layers``.
        style_images: style image files, folders (every image inside) or glob patterns.
        style_names: one name per style image; the file stems when None.
        content_weight, style_weight, tv_weight: weights of the content, style (per layer) and
            total-variation losses (VGG on ImageNet-normalized [0, 1] input; see ``miro.losses``).
        optimizer: ``params → Optimizer`` (a partial).
        style_image_size: short side, in pixels, style images are resized to for their Grams.
        content_layer, style_layers: the loss network taps of each loss.
        loss_precision: the type the loss network computes in: ``float32`` (default),
            ``bfloat16`` or ``auto`` (bfloat16 where the device computes it natively,
            ``miro.devices``); Grams, losses and the stylizer stay float32. bfloat16 takes about
            0.7× the step on CPUs with AVX512-BF16 and reaches nearly the same objective
            (``tests/test_style_precision.py``), but its features carry 3 significant digits:
            two styles that differ subtly (two recolourings of one painting) blur together.
        seed: seeds the style drawn for each training image (plus the rank under DDP).
        finetune_from: a checkpoint of this module; its styles are kept bit for bit and only
            the γ/β tables learn the new ``style_images``.
        cpu_images_per_pass: on CPUs, the batch goes through the stylizer and the loss network
            this many images at a time, into one loss and one backward: the same gradient (up
            to float rounding) in less time. glibc maps large buffers afresh at every step and
            takes a page fault for every 4 KB of them; smaller passes make smaller buffers,
            which it reuses from its heap (``benchmarks/style_throughput.py`` times the step
            as configured). None: the whole batch at once, as on GPUs always.

    ``training_step`` returns the weighted losses and the outputs' flatness for
    ``DivergenceWatchdog``; ``validation_step`` the batch in every style for
    ``StyleSampleGrid``.
    """

    def __init__(
        self,
        stylizer: Callable[..., Stylizer],
        loss_net: VGG16Features,
        style_images: Sequence[str],
        style_names: Sequence[str] | None = None,
        content_weight: float = 1.0,
        style_weight: float = 0.33,
        tv_weight: float = 0.0,
        optimizer: Callable | None = None,
        style_image_size: int = 256,
        content_layer: str = "relu3_3",
        style_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        seed: int = 0,
        finetune_from: str | None = None,
        loss_precision: str = "float32",
        cpu_images_per_pass: int | None = None,
    ) -> None:
        super().__init__()
        compute_dtype(loss_precision, torch.device("cpu"))  # a known name, or ValueError now
        if cpu_images_per_pass is not None and cpu_images_per_pass < 1:
            raise ValueError(f"cpu_images_per_pass={cpu_images_per_pass}: give 1 or more, or null")
        self.loss_precision = loss_precision
        self.cpu_images_per_pass = cpu_images_per_pass
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

    def forward(self, images: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1], style ids ``(B,)`` or mixing weights
        ``(B, num_styles)`` → stylized images ``(B, 3, H, W)`` in [0, 1]."""
        return self.stylizer(images, styles)

    def losses(
        self, content: torch.Tensor, styles: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stylize ``content`` in trained ``styles``; the outputs and the unweighted losses:
        ``content``, ``tv`` (scalars) and ``style`` per image ``(B,)``. On CPUs, in passes of
        ``cpu_images_per_pass`` images whose losses combine into the whole batch's."""
        size = self.cpu_images_per_pass
        if content.device.type != "cpu" or size is None or size >= len(content):
            return self._losses(content, styles)
        pieces = zip(content.split(size), styles.split(size), strict=True)
        passes = [self._losses(images, drawn) for images, drawn in pieces]
        shares = [len(outputs) / len(content) for outputs, _ in passes]

        def weighted(name: str) -> torch.Tensor:
            """A mean over equal-sized images (content, TV): the passes' means by their share."""
            terms = zip(shares, passes, strict=True)
            return sum(share * parts[name] for share, (_, parts) in terms)

        return torch.cat([outputs for outputs, _ in passes]), {
            "content": weighted("content"),
            "style": torch.cat([parts["style"] for _, parts in passes]),
            "tv": weighted("tv"),
        }

    def _losses(
        self, content: torch.Tensor, styles: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``losses`` of ``content`` in one pass."""
        outputs = self.stylizer(content, styles)
        dtype = compute_dtype(self.loss_precision, content.device)
        with torch.autocast(content.device.type, dtype, enabled=dtype != torch.float32):
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

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> dict[str, torch.Tensor]:
        drawn = self._draw_styles(len(batch))
        styles = drawn.to(self.device, non_blocking=True)
        outputs, parts = self.losses(batch, styles)
        weighted = {
            "content": self.content_weight * parts["content"],
            "style": self.style_weight * parts["style"].mean(),
            "tv": self.tv_weight * parts["tv"],
        }
        loss = weighted["content"] + weighted["style"] + weighted["tv"]

        size = len(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/content_loss", parts["content"], batch_size=size)
        self.log("train/style_loss", parts["style"].mean(), batch_size=size)
        self.log("train/tv_loss", parts["tv"], batch_size=size)
        self._log_per_style(drawn.tolist(), styles, parts["style"].detach())
        return {
            "loss": loss,
            "style": weighted["style"].detach(),
            "content": weighted["content"].detach(),
            "flatness": outputs.detach().std(dim=(2, 3)).max(),
        }

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
        tables = self.stylizer.norm_parameters()
        self._frozen_rows = [table[: self.first_trained].clone() for table in tables]

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        """Every validation image in every style: the losses of the trained styles; returns
        the stylized batch ``(num_styles, B, 3, H, W)`` (for ``StyleSampleGrid``)."""
        stylized, totals = [], {"content": 0.0, "style": 0.0, "tv": 0.0}
        size = len(batch)
        for style in range(self.stylizer.num_styles):
            styles = torch.full((size,), style, device=batch.device)
            if style < self.first_trained:  # inherited by a fine-tune: shown, not scored
                stylized.append(self.stylizer(batch, styles))
                continue
            outputs, parts = self.losses(batch, styles)
            stylized.append(outputs)
            name = self.style_names[style]
            style_mean = parts["style"].mean()
            self.log(f"val/style_loss/{name}", style_mean, batch_size=size, sync_dist=True)
            for part, value in parts.items():
                totals[part] += value.mean() / self.num_trained
        loss = (
            self.content_weight * totals["content"]
            + self.style_weight * totals["style"]
            + self.tv_weight * totals["tv"]
        )
        self.log("val/loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val/content_loss", totals["content"], batch_size=size, sync_dist=True)
        self.log("val/style_loss", totals["style"], batch_size=size, sync_dist=True)
        return torch.stack(stylized)

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
        loaded = load_stylizer(checkpoint)
        shape = stylizer_config(loaded.stylizer, loaded.style_names)  # width, depth, blocks
        model = stylizer(
            num_styles=loaded.num_styles + new_styles,
            width=shape["width"],
            num_residual=shape["num_residual"],
            separable=shape["separable"],
        )
        model.load_state_dict(add_styles(loaded.stylizer.state_dict(), new_styles))
        model.requires_grad_(False)
        for table in model.norm_parameters():
            table.requires_grad_(True)
        return model, loaded.style_names
