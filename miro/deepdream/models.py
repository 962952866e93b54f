"""Networks to dream with: named layers, run only as deep as the objective reads.

A dream model takes images ``(B, 3, H, W)`` float RGB in [0, 1] (ImageNet normalization happens
inside) and returns the activations of the requested layers by name, computing nothing past the
deepest of them (DeepDream's ``end=`` layer in Google's notebook). Three kinds:

- ``googlenet()``: torchvision's ImageNet GoogLeNet (Szegedy et al. 2015), the classic dreamer;
  layers ``conv1`` … ``inception5b``, branches such as ``inception4c.branch2``, and ``logits``.
- ``vgg16()``: VGG-16 ``features`` (Simonyan and Zisserman 2015), layers ``conv1_1`` … ``pool5``.
- ``from_encoder()`` / ``text_encoder()``: our text-supervised
  ``GoogLeNetEncoder``, whose ``output`` layer is the image's embedding in the text space.

Example::

    model = googlenet(weights="IMAGENET1K_V1")     # or weights=None: random, said in the log
    acts = model(images, ["inception4c"])          # {"inception4c": (B, 512, H/16, W/16)}
"""

import copy
import functools
import itertools
import logging
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models import GoogLeNet
from torchvision.models.googlenet import BasicConv2d, Inception

from miro.deepdream.stem import StemConv2d
from miro.models.checkpoints import load_encoder
from miro.models.googlenet import GoogLeNetEncoder
from miro.models.vgg import LAYER_NAMES as VGG_LAYER_NAMES
from miro.models.vgg import build_features
from miro.models.weights import IMAGENET_MEAN, IMAGENET_STD, load_pretrained_state_dict

log = logging.getLogger(__name__)

TEXT_LAYER = "output"
BRANCHES = ("branch1", "branch2", "branch3", "branch4")


class DreamModel(nn.Module):
    """A frozen network as an ordered list of named stages, run up to the deepest requested
    layer. Subclasses fill ``self.stages`` (``(name, module)`` in forward order) and name their
    ``default_layer``.

    Attributes:
        layer_names: every name ``forward`` accepts, shallow to deep.
        default_layer: the layer a plain ``layer()`` dream uses.
        overview_layers: one layer per block, shallow to deep: the layer-by-layer figure.
        text_model: the fitted text model of a text-supervised encoder (``transform``,
            ``knows``, ``tokenizer``), else None (``text_model_error`` then may say why).
        prepare_text: maps the text model's vectors ``(N, D)`` into the space of ``output``
            (the training loss's ``prepare_targets``), or None when they already are.
        rectified_later: stages whose ReLU runs after the max pool that follows them (see
            ``relu_after``); read as layers, they are rectified on the side.
    """

    default_layer: str
    overview_layers: tuple[str, ...]  # what ``layers=all`` dreams: one per block, shallow to deep

    def __init__(self) -> None:
        super().__init__()
        self.stages: list[tuple[str, nn.Module | Callable]] = []
        self.text_model = None
        self.text_model_error: str | None = None  # why a text encoder has no text model
        self.prepare_text: Callable | None = None
        self.rectified_later: set[str] = set()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @functools.cached_property
    def layer_names(self) -> tuple[str, ...]:
        names = []
        for name, module in self.stages:
            if not name.startswith("_"):  # "_name": a stage that is run but not a layer
                names.append(name)
            if isinstance(module, Inception):
                names += [f"{name}.{branch}" for branch in BRANCHES]
        return tuple(names)

    @property
    def has_text_space(self) -> bool:
        return TEXT_LAYER in self.layer_names

    def check_layers(self, layers: Iterable[str]) -> None:
        """Raise ``ValueError`` naming the unknown layers and listing the valid ones."""
        valid = self.layer_names
        unknown = sorted(set(layers) - set(valid))
        if not unknown:
            return
        hint = ""
        if TEXT_LAYER in unknown:
            hint = (
                f" (layer {TEXT_LAYER!r}, the text space, exists only in text-supervised "
                "encoders: load one with miro.deepdream.text_encoder(ckpt_path))"
            )
        raise ValueError(
            f"unknown layer(s) {unknown} for {type(self).__name__}{hint}; valid layers: "
            f"{', '.join(valid)}"
        )

    def depth(self, layer: str) -> int:
        """Index of the stage that computes ``layer`` (branches: their block's stage)."""
        block = layer.split(".")[0]
        for index, (name, _) in enumerate(self.stages):
            if name == block:
                return index
        self.check_layers([layer])
        raise AssertionError("unreachable")

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB → the network's input convention (ImageNet mean and std)."""
        return (images - self.mean) / self.std

    def forward(self, images: torch.Tensor, layers: Collection[str]) -> dict[str, torch.Tensor]:
        """Images ``(B, 3, H, W)`` in [0, 1] → ``{layer: activations}`` for ``layers``; the
        stages after the deepest of them are not run."""
        wanted = set(layers)
        if not wanted:
            raise ValueError(f"name at least one layer of {type(self).__name__} to compute")
        self.check_layers(wanted)
        last = max(self.depth(name) for name in wanted)
        x = self.normalize(images)
        taps: dict[str, torch.Tensor] = {}
        for index, (name, module) in enumerate(self.stages[: last + 1]):
            branches = [b for b in BRANCHES if f"{name}.{b}" in wanted]
            if branches:
                whole = index < last or name in wanted
                x = self._run_branches(name, module, x, branches, taps, whole)
            else:
                x = module(x)
            if name in wanted:
                taps[name] = F.relu(x) if name in self.rectified_later else x
        return taps

    def _relu_after_pool(self, index: int, before_relu: nn.Module) -> None:
        """Stage ``index``, a ReLU's layer, runs as ``before_relu`` (its input to the ReLU) and
        the max pool of stage ``index + 1`` applies the ReLU after pooling (``relu_after``)."""
        name, (pool_name, pool) = self.stages[index][0], self.stages[index + 1]
        self.stages[index] = (name, before_relu)
        self.stages[index + 1] = (pool_name, relu_after(pool))
        self.rectified_later.add(name)

    @staticmethod
    def _run_branches(name, block, x, branches, taps, whole: bool) -> torch.Tensor | None:
        """An Inception block whose branches are read: run them one by one, and only the read
        ones unless the block's output is needed (``whole``)."""
        run = BRANCHES if whole else branches
        outputs = {branch: getattr(block, branch)(x) for branch in run}
        for branch in branches:
            taps[f"{name}.{branch}"] = outputs[branch]
        return torch.cat([outputs[b] for b in BRANCHES], 1) if whole else None

    def freeze(self) -> "DreamModel":
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "DreamModel":
        """Always eval: batch norm uses its running statistics and dropout is off."""
        return super().train(False)


class GoogLeNetDream(DreamModel):
    """A torchvision ``GoogLeNet`` (``net``) as named stages.

    Its frozen batch norms are folded into the convolutions before them (in ``net``, in
    place): a third of the time of a dream step on a CPU went to batch norm and its backward.
    Its stem convolution takes its input gradient as one stride-1 convolution
    (``miro.deepdream.stem``), and the ReLUs of ``conv1`` and ``conv3`` run after the max pools
    that follow them (``relu_after``).

    Args:
        net: the network; its ``transform_input`` re-scaling is kept.
        head: what follows global pooling: the ImageNet ``fc`` (layer ``logits``) or an encoder's
            text-space head (layer ``output``).
        head_name: ``"logits"`` or ``"output"``.
    """

    default_layer = "inception4c"
    overview_layers = tuple(f"inception{n}" for n in ("3a", "3b", "4a", "4b", "4c", "4d", "4e"))
    overview_layers += ("inception5a", "inception5b")

    def __init__(self, net: GoogLeNet, head: nn.Module, head_name: str = "logits") -> None:
        super().__init__()
        self.net = fold_batch_norms(net.eval())
        net.conv1.conv = StemConv2d(net.conv1.conv)
        self.head = head
        blocks = ["conv1", "_maxpool1", "conv2", "conv3", "_maxpool2", "inception3a"]
        blocks += ["inception3b", "_maxpool3", "inception4a", "inception4b", "inception4c"]
        blocks += ["inception4d", "inception4e", "_maxpool4", "inception5a", "inception5b"]
        self.stages = [(name, getattr(net, name.lstrip("_"))) for name in blocks]
        self.stages.append((head_name, head))
        for conv in ("conv1", "conv3"):  # each a BasicConv2d (batch norm folded), then a pool
            self._relu_after_pool(blocks.index(conv), getattr(net, conv).conv)
        self.freeze()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet normalization, then ``transform_input``'s re-scaling where the net has it:
        ``((x − mean) / std) · std / 0.5 + (mean − 0.5) / 0.5``, which is ``2x − 1`` for every
        channel, in one pass (torchvision splits, scales and concatenates the channels)."""
        if self.net.transform_input:
            return images.mul(2).sub_(1)
        return super().normalize(images)


def relu_after(pool: nn.Module) -> nn.Sequential:
    """``pool`` (a max pool) then an in-place ReLU, to stand for ReLU then ``pool``. The same
    values, since a max commutes with a rising function, and the same gradient: a window whose
    maximum is positive sends it to the same input either way, and one whose maximum is not
    passes none. The ReLU, its gradient and their fresh buffers then run at the pooled size (a
    quarter of the full one at stride 2): 0.94x the time of a 512 px GoogLeNet dream on a Zen 3
    CPU."""
    return nn.Sequential(pool, nn.ReLU(inplace=True))


def fold_batch_norms(net: nn.Module) -> nn.Module:
    """Fold the eval-mode batch norm of every GoogLeNet ``BasicConv2d`` into its convolution
    (same function up to rounding), in place; returns ``net``."""
    for module in net.modules():
        if isinstance(module, BasicConv2d) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = nn.Identity()
    return net


class PooledHead(nn.Module):
    """Global average pooling, then ``linear``, then ``to_text_space`` (identity for logits)."""

    def __init__(self, linear: nn.Linear, to_text_space: Callable | None = None) -> None:
        super().__init__()
        self.linear = linear
        self.to_text_space = to_text_space

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        outputs = self.linear(features.mean(dim=(2, 3)))
        return outputs if self.to_text_space is None else self.to_text_space(outputs)


class VGG16Dream(DreamModel):
    """VGG-16 ``features`` (torchvision indices, so its state dicts load) as named stages:
    ``conv1_1``, ``relu1_1``, … ``pool5``. ReLUs are not in place, so conv layers can be read;
    the ReLU before each max pool runs after it (``relu_after``)."""

    default_layer = "relu4_3"
    overview_layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        for module in features:
            if isinstance(module, nn.ReLU):
                module.inplace = False
        self.stages = list(zip(VGG_LAYER_NAMES, features, strict=True))
        for index, (module, after) in enumerate(itertools.pairwise(features)):
            if isinstance(module, nn.ReLU) and isinstance(after, nn.MaxPool2d):
                self._relu_after_pool(index, nn.Identity())
        self.freeze()


def googlenet(
    weights: str | None = "IMAGENET1K_V1", weights_path: str | None = None
) -> GoogLeNetDream:
    """torchvision's ImageNet GoogLeNet; default layer ``inception4c`` (Google's notebook).

    Args:
        weights: a ``GoogLeNet_Weights`` name (``IMAGENET1K_V1``) read from the ``TORCH_HOME``
            cache; None keeps random weights (logged: the dreams then show no learned shapes).
        weights_path: a local GoogLeNet state dict (torchvision's keys); overrides ``weights``.
    """
    pretrained = weights is not None or weights_path is not None
    net = GoogLeNet(aux_logits=False, transform_input=pretrained, init_weights=not pretrained)
    if pretrained:
        if weights is not None and "." not in weights:
            weights = f"GoogLeNet_Weights.{weights}"
        state = load_pretrained_state_dict(weights, weights_path)
        state = {k: v for k, v in state.items() if not k.startswith("aux")}
        _load(net, state, weights_path or weights, "GoogLeNet")
    else:
        _say_random("GoogLeNet")
    return GoogLeNetDream(net, PooledHead(net.fc), head_name="logits")


def vgg16(weights: str | None = "IMAGENET1K_V1", weights_path: str | None = None) -> VGG16Dream:
    """torchvision's ImageNet VGG-16 ``features``; default layer ``relu4_3``.

    Args:
        weights: a ``VGG16_Weights`` name (``IMAGENET1K_V1``) read from the ``TORCH_HOME`` cache;
            None keeps random weights (logged).
        weights_path: a local VGG-16 state dict (torchvision's keys); overrides ``weights``.
    """
    features = build_features(len(VGG_LAYER_NAMES))
    if weights is None and weights_path is None:
        _say_random("VGG-16")
    else:
        if weights is not None and "." not in weights:
            weights = f"VGG16_Weights.{weights}"
        state = load_pretrained_state_dict(weights, weights_path)
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("feat")}
        _load(features, state, weights_path or weights, "VGG-16")
    return VGG16Dream(features)


def from_encoder(
    encoder: GoogLeNetEncoder,
    to_text_space: Callable | None = None,
    text_model=None,
    prepare_targets: Callable | None = None,
) -> GoogLeNetDream:
    """A text-supervised ``GoogLeNetEncoder`` to dream with: its GoogLeNet layers plus ``output``,
    the image's embedding in the text space (``to_text_space`` of the raw outputs, e.g. the
    loss's sigmoid; identity when None). ``text_model`` turns words into text vectors, which
    ``prepare_targets`` (the loss's) maps into that space. The dream model holds a copy of the
    encoder's weights."""
    net = copy.deepcopy(encoder.net)  # a frozen, folded copy: the encoder stays trainable
    model = GoogLeNetDream(net, PooledHead(net.fc, to_text_space), TEXT_LAYER)
    model.text_model = text_model
    model.prepare_text = prepare_targets
    return model


def text_encoder(ckpt_path: str | Path, text_model_dir: str | Path | None = None) -> GoogLeNetDream:
    """The dream model of an encoder checkpoint (``from_encoder`` of what ``load_encoder``
    reads), knowing why its text model is missing if it is: a ``_target_`` for configs, beside
    ``googlenet`` and ``vgg16``."""
    loaded = load_encoder(ckpt_path, text_model_dir)
    model = from_encoder(
        loaded.encoder, loaded.to_text_space, loaded.text_model, loaded.prepare_targets
    )
    model.text_model_error = loaded.text_model_error
    return model


def _say_random(name: str) -> None:
    log.warning(
        "dreaming with a %s of random weights (weights=null): the dream runs, but shows no "
        "learned shapes; give weights=IMAGENET1K_V1 (TORCH_HOME cache) or weights_path=FILE",
        name,
    )


def _load(module: nn.Module, state: dict, source: str | None, name: str) -> None:
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"weights {source} are not a {name} state dict "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
