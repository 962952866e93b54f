"""Losses. Text supervision: a loss compares the encoder's raw outputs with text targets and
says how outputs map into the text space, where retrieval compares them with text queries.
Style transfer: Gram-matrix style, feature content and total-variation losses (Gatys et al.
2016; Johnson et al. 2016; Dumoulin et al. 2017), plain functions of loss-network features.
"""

import math
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

# Text supervision. Every text loss takes the text model's raw vectors as targets (topic
# distributions, mean word vectors: the cached artifact, shared by all losses) and owns the map
# into the space it trains in, ``prepare_targets``, because that space is the loss's choice:
# sigmoid cross-entropy needs [0, 1], the ranking and contrastive losses the unit sphere.
# ``to_text_space(outputs)`` lands in that same space, so retrieval compares it with
# ``prepare_targets(query vectors)``. ``forward`` always takes the raw vectors. A post whose
# target is all zeros (no caption word in the text model's vocabulary) teaches nothing: every
# loss ignores it.


def has_text(targets: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: the rows of ``targets`` ``(B, D)`` that are not all zeros."""
    return targets.ne(0).any(dim=1)


def same_text(texts: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` bool: pairs of unit-norm ``texts`` ``(B, D)`` that are the same vector, as
    identical captions give (a zero row matches nothing, itself included)."""
    return texts @ texts.T > 1 - 1e-5


def _mean_over(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``keep``; when nothing is kept, a zero that still depends on
    ``values`` (so backward runs, with zero gradients). No host sync: a GPU step never waits."""
    return torch.where(keep, values, 0.0).sum() / keep.sum().clamp(min=1)


class TextLoss(nn.Module, metaclass=ABCMeta):
    """A loss between encoder outputs ``(B, D)`` and text targets ``(B, D)``, with the maps of
    both into the text space where retrieval compares images with text queries."""

    @abstractmethod
    def prepare_targets(self, vectors: torch.Tensor) -> torch.Tensor:
        """The text model's vectors ``(N, D)`` → the targets this loss trains toward."""

    @abstractmethod
    def to_text_space(self, outputs: torch.Tensor) -> torch.Tensor:
        """Encoder outputs ``(B, D)`` → the space of ``prepare_targets``."""


class SigmoidCrossEntropy(TextLoss):
    """Sigmoid cross-entropy toward targets in [0, 1] (TextTopicNet, Gomez et al. 2017).

    A target row already in [0, 1] (a topic distribution) is used as it is; any other row (a
    word2vec mean) is shifted by its minimum and divided by its maximum, as "Learning to Learn
    from Web Data" (Gomez et al. 2018) did, so its smallest entry is 0 and its largest 1. The
    prediction in the text space is the sigmoid of the outputs.

    Example::

        loss = SigmoidCrossEntropy()
        value = loss(encoder(images), text_vectors)  # scalar
    """

    def prepare_targets(self, vectors: torch.Tensor) -> torch.Tensor:
        """Rows in [0, 1] as they are, others min-max scaled into [0, 1]; ``(N, D)``."""
        vectors = vectors.float()
        low = vectors.amin(dim=1, keepdim=True)
        inside = (low >= 0) & (vectors.amax(dim=1, keepdim=True) <= 1)
        shifted = vectors - low
        span = shifted.amax(dim=1, keepdim=True)
        scaled = torch.where(span > 0, shifted / span.clamp_min(1e-12), torch.zeros_like(shifted))
        return torch.where(inside, vectors, scaled)

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``outputs`` ``(B, D)`` logits and raw ``targets`` ``(B, D)``. Returns a scalar."""
        per_post = F.binary_cross_entropy_with_logits(
            outputs.float(), self.prepare_targets(targets), reduction="none"
        ).mean(dim=1)
        return _mean_over(per_post, has_text(targets))

    def to_text_space(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(outputs)


class SoftmaxCrossEntropy(TextLoss):
    """Cross-entropy between the softmax of the outputs and the caption's word distribution
    (Joulin et al., "Learning Visual Features from Large Weakly Supervised Data", ECCV 2016:
    it trained better than one logistic loss per word). Targets are non-negative weights per
    word (word counts, or a topic distribution), normalized to sum to 1.

    The text space holds square roots of distributions, unit vectors: the cosine of two of
    them is their Bhattacharyya coefficient, and the cosine of an image with a one-word query
    is ``sqrt(p(word | image))``, so a query ranks images by the probability of its word.

    Example::

        loss = SoftmaxCrossEntropy()
        value = loss(encoder(images), word_counts)  # scalar
    """

    def prepare_targets(self, vectors: torch.Tensor) -> torch.Tensor:
        """Square roots of the rows normalized to sum to 1 ``(N, D)``; zero rows stay zero."""
        return _distribution(vectors).sqrt()

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``outputs`` ``(B, D)`` logits and raw non-negative ``targets`` ``(B, D)``; a scalar."""
        per_post = -(_distribution(targets) * F.log_softmax(outputs.float(), dim=1)).sum(dim=1)
        return _mean_over(per_post, has_text(targets))

    def to_text_space(self, outputs: torch.Tensor) -> torch.Tensor:
        return F.softmax(outputs.float(), dim=1).sqrt()


def _distribution(vectors: torch.Tensor) -> torch.Tensor:
    """Non-negative rows ``(N, D)`` scaled to sum to 1; zero rows stay zero."""
    vectors = vectors.float()
    return vectors / vectors.sum(dim=1, keepdim=True).clamp_min(1e-12)


class _SphereLoss(TextLoss):
    """Targets and outputs compared as directions: both L2-normalized."""

    def prepare_targets(self, vectors: torch.Tensor) -> torch.Tensor:
        """Unit-norm rows ``(N, D)``; zero rows stay zero."""
        return F.normalize(vectors.float(), dim=1)

    def to_text_space(self, outputs: torch.Tensor) -> torch.Tensor:
        return F.normalize(outputs.float(), dim=1)


class CosineRegression(_SphereLoss):
    """Regression toward the direction of the text vector: ``1 − cos(output, target)``,
    averaged over the batch's posts with text. In [0, 2]."""

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``outputs`` and raw ``targets`` ``(B, D)``. Returns a scalar."""
        texts = self.prepare_targets(targets)
        cosine = (self.to_text_space(outputs) * texts).sum(dim=1)
        return _mean_over(1 - cosine, has_text(targets))


class TripletRanking(_SphereLoss):
    """Ranking loss with a margin (InstaBarcelona, Gomez et al.): an image must lie closer to
    its own caption's vector than to another post's, by ``margin`` in squared L2 between
    L2-normalized vectors: ``max(0, margin + |a − t⁺|² − |a − t⁻|²)``.

    Negatives are the other posts' text vectors in the batch, except those identical to the
    positive (the same caption is no negative) and those of posts without text.

    Args:
        margin: in squared distance between unit vectors (in [0, 4]); 0.4 in the paper.
        negatives: ``hardest`` (the closest negative of each image) or ``random`` (one drawn
            uniformly per image).
        seed: seeds the random draw; None draws from torch's global generator (seeded by
            ``seed_everything``).
    """

    NEGATIVES = ("hardest", "random")

    def __init__(self, margin: float = 0.4, negatives: str = "random", seed: int | None = None):
        super().__init__()
        if negatives not in self.NEGATIVES:
            raise ValueError(f"loss.negatives={negatives!r}; choose among {list(self.NEGATIVES)}")
        self.margin = margin
        self.negatives = negatives
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``outputs`` and raw ``targets`` ``(B, D)``. Returns a scalar."""
        anchors, texts = self.to_text_space(outputs), self.prepare_targets(targets)
        valid = has_text(targets)
        distances = (anchors[:, None, :] - texts[None, :, :]).square().sum(dim=2)  # (B, B)
        candidates = valid[None, :] & ~same_text(texts)
        if self.negatives == "hardest":
            negative = distances.masked_fill(~candidates, math.inf).amin(dim=1)
        else:
            draw = torch.rand(candidates.shape, generator=self.generator).to(distances.device)
            chosen = draw.masked_fill(~candidates, -1.0).argmax(dim=1, keepdim=True)
            negative = distances.gather(1, chosen).squeeze(1)
        positive = distances.diagonal()
        hinge = F.relu(self.margin + positive - negative)
        return _mean_over(hinge, valid & candidates.any(dim=1))


class InfoNCE(_SphereLoss):
    """Contrastive loss against the batch's fixed text vectors (CLIP, Radford et al. 2021, with
    the text side locked as in LiT, Zhai et al. 2022): each image must pick its caption's vector
    among the batch's, and each caption its image; cross-entropy over cosine similarities times
    a learned scale ``exp(log_scale)`` (inverse temperature), kept in ``[1, max_scale]``.

    Posts without text are left out. Another post with the identical text vector (the same
    caption) is not a negative: its logit is masked, for both directions.

    Args:
        temperature: initial temperature (CLIP: 0.07).
        max_scale: largest inverse temperature (CLIP: 100).
    """

    def __init__(self, temperature: float = 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))
        self.max_log_scale = math.log(max_scale)

    @property
    def scale(self) -> torch.Tensor:
        """The inverse temperature in use: ``exp(log_scale)`` clamped to ``[1, max_scale]``."""
        return self.log_scale.clamp(0.0, self.max_log_scale).exp()

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``outputs`` and raw ``targets`` ``(B, D)``. Returns a scalar."""
        valid = has_text(targets)
        if valid.sum() < 2:  # nothing to contrast with
            return outputs.sum() * 0.0 + self.log_scale * 0.0
        images = self.to_text_space(outputs[valid])
        texts = self.prepare_targets(targets[valid])
        duplicates = same_text(texts).fill_diagonal_(False)
        logits = (self.scale * images @ texts.T).masked_fill(duplicates, -math.inf)
        labels = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


# Style transfer. Convention (one for all of these): the loss network sees [0, 1] RGB images
# ImageNet-normalized inside it (torchvision's VGG-16 convention, ``miro.models.vgg``), not
# Magenta's [0, 255] mean-subtracted input; loss weights are calibrated for this convention.


class _Gram(torch.autograd.Function):
    """``positions × channels`` rows ``R`` ``(B, N, C)`` → ``RᵀR / N`` ``(B, C, C)``. The
    gradient is one product, ``R (G' + G'ᵀ) / N``, where autograd would take one for each
    operand of ``RᵀR`` and add them: a third less work on the largest feature maps."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        return torch.bmm(rows.transpose(1, 2), rows) / rows.shape[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (rows,) = ctx.saved_tensors
        return torch.bmm(rows, (grad + grad.transpose(1, 2)) / rows.shape[1])


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices ``FᵀF / (H·W)`` of features ``(B, C, H, W)`` → ``(B, C, C)``, in float32.

    Normalized by the number of positions only (Dumoulin et al. 2017, Magenta), so a style
    image's Gram does not depend on its size. Always float32: squares overflow half precision.
    """
    batch, channels, height, width = features.shape
    with torch.autocast(features.device.type, enabled=False):
        features = features.float()
        if features.is_contiguous(memory_format=torch.channels_last):  # (B, HW, C), no copy
            rows = features.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        else:
            rows = features.reshape(batch, channels, height * width).transpose(1, 2)
        return _Gram.apply(rows)


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Per-image style loss ``(B,)``: for each layer, the mean over its C×C entries of the
    squared difference between the Gram of ``features[layer]`` ``(B, C, H, W)`` and
    ``target_grams[layer]`` ``(B, C, C)`` (each image's own style), weighted and summed.

    Args:
        layer_weights: weight per layer of ``target_grams``; 1 for each when None.
    """
    total = 0.0
    for layer, target in target_grams.items():
        weight = 1.0 if layer_weights is None else layer_weights[layer]
        difference = gram_matrix(features[layer]) - target
        total = total + weight * difference.square().mean(dim=(1, 2))
    return total


def content_loss(features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between stylized and content features (same shape); scalar."""
    return F.mse_loss(features.float(), targets.float())


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels, vertical plus horizontal, of images
    ``(B, C, H, W)`` in [0, 1]; a scalar that is 0 for flat images."""
    vertical = (images[:, :, 1:] - images[:, :, :-1]).square().mean()
    horizontal = (images[:, :, :, 1:] - images[:, :, :, :-1]).square().mean()
    return vertical + horizontal
