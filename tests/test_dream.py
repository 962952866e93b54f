"""DeepDream on real networks with random weights, tiny images and a few steps, on the CPU."""

import copy
import logging

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models import GoogLeNet
from torchvision.models.googlenet import BasicConv2d

from miro.deepdream import (
    DreamSettings,
    ProgressBar,
    channel,
    dream,
    dream_layers,
    dream_octaves,
    from_encoder,
    googlenet,
    guide,
    guide_features,
    layer,
    neuron,
    noise_image,
    objective_gradient,
    octave_sizes,
    parse_objective,
    text,
    text_encoder,
    text_vector,
    tile_spans,
    vgg16,
    zoom_frames,
    zoom_rotate,
)
from miro.deepdream.models import relu_after
from miro.deepdream.stem import StemConv2d
from miro.models.checkpoints import EncoderCheckpointError, load_encoder
from miro.models.googlenet import GoogLeNetEncoder
from miro.models.vgg import LAYER_NAMES as VGG_LAYER_NAMES
from miro.models.weights import IMAGENET_MEAN, IMAGENET_STD
from miro.video import write_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = DreamSettings(octaves=2, steps=6)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return googlenet(weights=None)


def score(objective, model, images) -> float:
    with torch.no_grad():
        return objective(model(images, objective.layers)).sum().item()


def test_layer_objective_at_least_doubles(net):
    start = noise_image(64, 64, seed=1)
    objective = layer("inception4c")
    dreamed = dream(net, start, objective, QUICK, seed=0)
    assert dreamed.shape == start.shape
    assert dreamed.min() >= 0 and dreamed.max() <= 1
    assert score(objective, net, dreamed) >= 2 * score(objective, net, start)


def test_channel_neuron_and_guide_objectives_rise(net):
    start = noise_image(64, 64, seed=2)
    with torch.no_grad():
        maps = net(start, ["inception4b"])["inception4b"]
    alive = int(maps[0, :, maps.shape[2] // 2, maps.shape[3] // 2].argmax())  # not a dead ReLU
    guide_image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    for objective in (
        channel("inception4b", alive),
        neuron("inception4b", alive),
        guide("inception4b", guide_features(net, guide_image, "inception4b")),
    ):
        settings = DreamSettings(octaves=1, steps=6)
        before = score(objective, net, start)
        after = score(objective, net, dream(net, start, objective, settings, seed=0))
        assert after > before + 0.2 * abs(before), objective


def test_vgg16_dreams_and_reads_conv_layers():
    model = vgg16(weights=None)
    start = noise_image(48, 48, seed=4)
    objective = layer("conv3_1")
    dreamed = dream(model, start, objective, DreamSettings(octaves=1, steps=4), seed=0)
    assert score(objective, model, dreamed) > 1.2 * score(objective, model, start)
    with torch.no_grad():
        acts = model(start, ["conv3_1", "relu3_1"])
    assert (acts["conv3_1"] < 0).any(), "a ReLU in place would have changed the conv output"
    assert torch.equal(acts["relu3_1"], acts["conv3_1"].clamp(min=0))


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("pool", [nn.MaxPool2d(3, 2, ceil_mode=True), nn.MaxPool2d(2, 2)])
def test_relu_after_a_max_pool_is_relu_before_it_in_value_and_gradient(pool, memory_format):
    generator = torch.Generator().manual_seed(21)
    # On a coarse grid, so that windows hold ties, positive and not, and windows all negative.
    images = (torch.randn(2, 8, 17, 17, generator=generator) * 4).round() / 4
    images = images.contiguous(memory_format=memory_format)
    upstream = torch.randn(pool(images).shape, generator=generator)
    results = []
    for net in (nn.Sequential(nn.ReLU(), pool), relu_after(pool)):
        leaf = images.clone().requires_grad_(True)
        out = net(leaf)
        out.backward(upstream)
        results.append((out, leaf.grad))
    (before, before_grad), (after, after_grad) = results
    assert (before == 0).any() and before_grad.count_nonzero() > 0
    assert torch.equal(before, after) and torch.equal(before_grad, after_grad)


def test_vgg16_is_its_features_with_each_relu_after_its_pool():
    torch.manual_seed(22)
    model = vgg16(weights=None)
    assert model.rectified_later == {"relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"}
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(23))
    images.requires_grad_(True)
    acts = model(images, VGG_LAYER_NAMES)
    x, expected = model.normalize(images), {}
    for name, module in zip(VGG_LAYER_NAMES, model.features, strict=True):
        x = expected[name] = module(x)
    for name in VGG_LAYER_NAMES:
        assert torch.equal(acts[name], expected[name]), name
    (gradient,) = torch.autograd.grad(acts["relu4_3"].square().sum(), images)
    (reference,) = torch.autograd.grad(expected["relu4_3"].square().sum(), images)
    assert torch.equal(gradient, reference)


def test_objectives_add_and_scale(net):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    combined = 0.7 * layer("inception4c") + 0.3 * channel("inception3a", 5) - neuron("conv2", 1)
    assert combined.layers == {"inception4c", "inception3a", "conv2"}
    with torch.no_grad():
        acts = net(images, combined.layers)
    expected = (0.7 * layer("inception4c")(acts) + 0.3 * channel("inception3a", 5)(acts)) - neuron(
        "conv2", 1
    )(acts)
    torch.testing.assert_close(combined(acts), expected)
    assert sum([layer("conv1"), layer("conv2")]).layers == {"conv1", "conv2"}
    parsed = parse_objective("0.7*layer(inception4c) + 0.3*channel(inception3a, 5)", net)
    torch.testing.assert_close(parsed(acts), (combined + neuron("conv2", 1))(acts))
    assert parse_objective("", net).layers == {net.default_layer}


def test_the_network_stops_at_the_deepest_layer_read(net):
    ran = []
    hooks = [
        getattr(net.net, name).register_forward_hook(lambda *_, name=name: ran.append(name))
        for name in ("inception4b", "inception4c", "inception4d", "inception5a")
    ]
    try:
        with torch.no_grad():
            acts = net(torch.rand(1, 3, 64, 64), ["inception4c.branch2", "inception3a"])
    finally:
        for hook in hooks:
            hook.remove()
    assert ran == ["inception4b"]  # 4c ran branch by branch, and only its branch 2
    with torch.no_grad():
        whole = net(torch.rand(1, 3, 64, 64), ["inception4c", "inception4c.branch1"])
    torch.testing.assert_close(whole["inception4c"][:, :128], whole["inception4c.branch1"])
    assert set(acts) == {"inception4c.branch2", "inception3a"}


def test_a_bad_layer_name_lists_the_valid_ones(net):
    with pytest.raises(ValueError, match=r"inception9.*valid layers: conv1, .*inception4c,"):
        dream(net, torch.rand(1, 3, 64, 64), layer("inception9"))
    with pytest.raises(ValueError, match=r"relu9_9.*valid layers: conv1_1, relu1_1,"):
        vgg16(weights=None)(torch.rand(1, 3, 32, 32), ["relu9_9"])
    with pytest.raises(ValueError, match="text-supervised encoders"):
        parse_objective("layer(output)", net)
    with pytest.raises(ValueError, match="unknown term"):
        parse_objective("deep(inception4c)", net)


def test_tiled_and_untiled_gradients_agree(net):
    images = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(6))
    objective = layer("inception3b")
    whole = objective_gradient(net, objective, images, tile_size=None)
    assert torch.equal(objective_gradient(net, objective, images, tile_size=96), whole)
    tiled = objective_gradient(net, objective, images, tile_size=48)  # 2 x 2 tiles
    tiled, whole = tiled.flatten() / tiled.abs().max(), whole.flatten() / whole.abs().max()
    assert torch.nn.functional.cosine_similarity(tiled, whole, 0) > 0.7  # differ near tile borders
    one_tile = DreamSettings(octaves=2, steps=3, tile_size=512)
    untiled = DreamSettings(octaves=2, steps=3, tile_size=None)
    assert torch.equal(dream(net, images, settings=one_tile), dream(net, images, settings=untiled))
    assert tile_spans(100, 48) == [(0, 33), (33, 67), (67, 100)]
    assert tile_spans(100, None) == tile_spans(100, 100) == [(0, 100)]


def test_a_large_image_dreams_in_tiles(net):
    images = noise_image(80, 136, seed=7)
    settings = DreamSettings(octaves=1, steps=2, tile_size=48, jitter=4)
    dreamed = dream(net, images, settings=settings, seed=0)
    assert dreamed.shape == images.shape and not torch.equal(dreamed, images)


def test_octave_sizes_follow_the_scale(net):
    assert octave_sizes(512, 384, 4, 1.4) == [(187, 140), (261, 196), (366, 274), (512, 384)]
    images = torch.rand(1, 3, 90, 70)
    settings = DreamSettings(octaves=3, octave_scale=1.5, steps=1)
    sizes = [tuple(image.shape[-2:]) for image in dream_octaves(net, images, settings=settings)]
    assert sizes == [(40, 31), (60, 47), (90, 70)]
    with pytest.raises(ValueError, match="fewer octaves"):
        octave_sizes(32, 32, 4, 1.4)


def test_same_seed_same_image(net):
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(8))
    settings = DreamSettings(octaves=2, steps=2)
    first = dream(net, images, settings=settings, seed=3)
    assert torch.equal(first, dream(net, images, settings=settings, seed=3))
    assert not torch.equal(first, dream(net, images, settings=settings, seed=4))
    assert torch.equal(noise_image(8, 8, seed=1), noise_image(8, 8, seed=1))


def test_progress_reports_every_step(net):
    events = []
    dream(net, torch.rand(1, 3, 48, 48), settings=QUICK, progress=events.append)
    assert len(events) == QUICK.octaves * QUICK.steps
    assert (events[-1].octave, events[-1].step, events[-1].size) == (1, QUICK.steps, (48, 48))
    bar = ProgressBar(disable=True)
    dream(net, torch.rand(1, 3, 48, 48), settings=QUICK, progress=bar)
    assert bar.bar is None  # closed after the last step


def test_dream_layers_dreams_each_layer(net):
    images = torch.rand(1, 3, 48, 48)
    settings = DreamSettings(octaves=1, steps=1)
    dreams = dict(dream_layers(net, images, ["conv2", "inception3a"], settings))
    assert list(dreams) == ["conv2", "inception3a"]
    assert not torch.equal(dreams["conv2"], dreams["inception3a"])


def test_zoom_writes_frames_as_gif_and_mp4(net, tmp_path):
    settings = DreamSettings(octaves=1, steps=1)
    frames = list(zoom_frames(net, noise_image(48, 64, seed=9), None, settings, 3, 1.1, 2.0))
    assert len(frames) == 3 and all(frame.shape == (1, 3, 48, 64) for frame in frames)
    assert write_video(frames, tmp_path / "zoom.gif", fps=5) == 3
    with Image.open(tmp_path / "zoom.gif") as gif:
        assert (gif.n_frames, gif.size) == (3, (64, 48))
    assert write_video(iter(frames), tmp_path / "zoom.mp4", fps=5) == 3
    with imageio.get_reader(tmp_path / "zoom.mp4") as reader:
        read = [frame for frame in reader]
    assert len(read) == 3 and read[0].shape == (48, 64, 3)
    with pytest.raises(ValueError, match="suffix"):
        write_video(frames, tmp_path / "zoom.avi")


def test_zoom_rotate_is_identity_at_rest():
    images = torch.rand(1, 3, 20, 30)
    torch.testing.assert_close(zoom_rotate(images, 1.0, 0.0), images)
    zoomed = zoom_rotate(images, 2.0)
    assert zoomed.shape == images.shape and not torch.allclose(zoomed, images)


# Folding batch norms into the convolutions (GoogLeNetDream) must not change the function.

TAPPED = ("conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "inception4b")
TAPPED += ("inception4c", "inception4d", "inception4e", "inception5a", "inception5b")


def with_batch_norms_in_use(net: GoogLeNet, seed: int) -> GoogLeNet:
    """``net`` in eval mode with every batch norm doing work: He-initialized convolutions,
    running statistics measured on random images and then shifted (mean by ~0.3 σ, variance
    ×0.5-2), affine weights in [0.5, 1.5] and biases ~N(0, 0.3²). Fresh batch norms (mean 0,
    variance 1, γ=1, β=0) are the identity up to eps, where a wrong fold would go unnoticed."""
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: the statistics of the batch below
    with torch.no_grad():
        net.train()(torch.randn(4, 3, 64, 64, generator=generator))
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                size = module.num_features

                def uniform(low: float, high: float, size=size) -> torch.Tensor:
                    return low + (high - low) * torch.rand(size, generator=generator)

                module.running_mean += (
                    0.3 * module.running_var.sqrt() * torch.randn(size, generator=generator)
                )
                module.running_var *= uniform(0.5, 2.0)
                module.weight.copy_(uniform(0.5, 1.5))
                module.bias.copy_(0.3 * torch.randn(size, generator=generator))
    return net.eval()


def unfolded_taps(net: GoogLeNet, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The activations of ``net`` itself (batch norms in place) at ``TAPPED`` and its output,
    for images in [0, 1]: normalized as the dream model does; ``GoogLeNet.forward`` applies
    its own ``transform_input``."""
    taps: dict[str, torch.Tensor] = {}
    hooks = [
        getattr(net, name).register_forward_hook(
            lambda *args, name=name: taps.update({name: args[2]})
        )
        for name in TAPPED
    ]
    mean, std = (
        torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
        torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
    )
    try:
        taps["net"] = net((images - mean) / std)
    finally:
        for hook in hooks:
            hook.remove()
    return taps


def assert_same_function(folded: dict, unfolded: dict, names) -> None:
    """Equal up to float32 rounding: at most 1e-5 of the activations' own largest magnitude
    (measured: 3.5e-6 at worst, through 57 folded layers). A fold without the shift errs by
    0.16 of it at conv1, one that forgets batch norm's eps (1e-3) by 4e-4."""
    for name in names:
        reference = unfolded[name]
        assert reference.abs().max() > 1  # live activations, not vanished ones
        error = (folded[name] - reference).abs().max() / reference.abs().max()
        assert error < 1e-5, f"{name}: relative error {error:.2e}"


def test_googlenet_with_its_batch_norms_folded_is_the_same_function(tmp_path):
    pretrained = GoogLeNet(aux_logits=False, transform_input=True, init_weights=True)
    net = with_batch_norms_in_use(pretrained, seed=11)
    weights = tmp_path / "googlenet.pth"
    torch.save(net.state_dict(), weights)
    model = googlenet(weights=None, weights_path=str(weights))  # ImageNet's transform_input too
    assert model.net.transform_input
    # Every batch norm is gone, folded into a convolution that now has a bias.
    assert not any(isinstance(module, nn.BatchNorm2d) for module in model.modules())
    convs = [module for module in model.modules() if isinstance(module, BasicConv2d)]
    assert len(convs) == 57 and all(isinstance(conv.bn, nn.Identity) for conv in convs)
    assert all(conv.conv.bias is not None for conv in convs)

    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(12))
    images.requires_grad_(True)
    folded = model(images, [*TAPPED, "logits"])
    unfolded = unfolded_taps(net, images)
    with torch.no_grad():
        assert_same_function(folded, unfolded | {"logits": unfolded["net"]}, [*TAPPED, "logits"])
    # ... and so are the gradients a dream step follows.
    (gradient,) = torch.autograd.grad(folded["inception4c"].square().sum(), images)
    (expected,) = torch.autograd.grad(unfolded["inception4c"].square().sum(), images)
    assert (gradient - expected).abs().max() < 1e-4 * expected.abs().max()


def test_an_encoder_dreams_folded_and_stays_as_it_was():
    torch.manual_seed(13)
    encoder = GoogLeNetEncoder(embed_dim=6)
    with_batch_norms_in_use(encoder.net, seed=13)
    before = copy.deepcopy(encoder.state_dict())
    model = from_encoder(encoder)  # no to_text_space: ``output`` is the raw outputs
    assert not any(isinstance(module, nn.BatchNorm2d) for module in model.modules())

    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(14))
    with torch.no_grad():
        folded = model(images, [*TAPPED, "output"])
        unfolded = unfolded_taps(encoder.net, images)
        assert_same_function(folded, unfolded | {"output": encoder(images)}, [*TAPPED, "output"])
    # The encoder keeps its batch norms and weights, trainable: the dream model folds a copy.
    assert sum(isinstance(module, nn.BatchNorm2d) for module in encoder.modules()) == 57
    assert all(torch.equal(value, before[key]) for key, value in encoder.state_dict().items())
    assert all(parameter.requires_grad for parameter in encoder.parameters())


def test_random_weights_are_said_in_the_log(caplog):
    with caplog.at_level(logging.WARNING):
        googlenet(weights=None)
    assert "random weights" in caplog.text


# The text-supervised encoder, saved by a real Lightning fit (conftest) and read back.


def test_the_checkpoint_records_what_the_loader_needs(encoder_checkpoint):
    path, module = encoder_checkpoint
    meta = torch.load(path, weights_only=True)["encoder"]
    assert meta["class"] == "miro.models.googlenet.GoogLeNetEncoder"
    assert (meta["embed_dim"], meta["transform_input"]) == (4, False)
    assert meta["to_text_space"] == "miro.losses.SigmoidCrossEntropy"
    assert meta["text_model"]["class"] == "miro.text.lda.TopicEmbedder"
    loaded = load_encoder(path)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = module.eval()(images)
        torch.testing.assert_close(loaded.to_text_space(loaded.encoder(images)), expected)
        torch.testing.assert_close(text_encoder(path)(images, ["output"])["output"], expected)
    vector = text_vector(loaded.text_model, "red star")
    assert vector.shape == (4,) and torch.isclose(vector.sum(), torch.tensor(1.0))
    # Topics lie in [0, 1] already; gensim's inference starts at random, hence the tolerance.
    again = text_vector(loaded.text_model, "red star", loaded.prepare_targets)
    torch.testing.assert_close(again, vector, atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match=r"does not know 'zebra', 'giraffe'"):
        text_vector(loaded.text_model, "zebra star giraffe")


def test_an_older_checkpoint_loads_by_inference(encoder_checkpoint, tmp_path):
    path, _ = encoder_checkpoint
    state = torch.load(path, weights_only=True)
    old = tmp_path / "run" / "checkpoints" / "old.ckpt"
    old.parent.mkdir(parents=True)
    torch.save({"state_dict": state["state_dict"]}, old)
    loaded = load_encoder(old)  # no text model beside it: still dreams on layers
    assert loaded.embed_dim == 4 and loaded.text_model is None
    with pytest.raises(ValueError, match=r"text model of .* was not found"):
        parse_objective("text(star)", text_encoder(old))
    assert load_encoder(old, text_model_dir=path.parents[1] / "text_model" / "model").text_model
    with pytest.raises(EncoderCheckpointError, match="does not exist"):
        load_encoder(tmp_path / "none.ckpt")


def test_the_text_objective_raises_the_cosine_to_the_text_vector(encoder_checkpoint):
    loaded = load_encoder(encoder_checkpoint[0])
    model = text_encoder(encoder_checkpoint[0])
    vector = text_vector(loaded.text_model, "bird", loaded.prepare_targets)
    start = noise_image(64, 64, seed=10)

    def cosine(images: torch.Tensor) -> float:
        with torch.no_grad():
            embedding = loaded.to_text_space(loaded.encoder(images))
        return torch.nn.functional.cosine_similarity(embedding, vector[None]).item()

    # No jitter: on a 64 px image, a global objective of a random network is far from
    # shift-invariant, so a gradient taken on a rolled image helps the image itself little.
    settings = DreamSettings(octaves=1, steps=10, jitter=0)
    dreamed = dream(model, start, text(vector), settings, seed=0)
    assert cosine(dreamed) > cosine(start) + 0.05
    parsed = parse_objective("0.5 * text(bird) + 0.5 * layer(inception4c)", model)
    assert parsed.layers == {"output", "inception4c"}
    assert np.isfinite(score(parsed, model, start))


@pytest.mark.parametrize(("kernel", "padding"), [(7, 3), (3, 1), (4, 2)])
@pytest.mark.parametrize("size", [64, 61])
def test_stem_conv_input_gradient_is_the_convolutions(kernel, padding, size):
    """The stride-2 stem's input gradient, taken as one stride-1 convolution over the four
    output parities, is the convolution's own, at odd and even sizes and any layout."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 64, kernel, stride=2, padding=padding).requires_grad_(False)
    stem = StemConv2d(conv)
    images = torch.rand(2, 3, size, size + 3)
    weights = torch.randn_like(conv(images))
    plain = images.clone().requires_grad_(True)
    (conv(plain) * weights).sum().backward()
    for layout in (torch.contiguous_format, torch.channels_last):
        fast = images.clone().contiguous(memory_format=layout).requires_grad_(True)
        out = stem(fast)
        assert torch.equal(out, conv(fast.detach()))
        (out * weights).sum().backward()
        scale = plain.grad.abs().max()
        assert (fast.grad - plain.grad).abs().max() <= 1e-5 * scale


def test_stem_conv_trains_as_the_plain_convolution_and_follows_new_weights():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 7, stride=2, padding=3)
    stem, images = StemConv2d(conv), torch.rand(1, 3, 32, 32)
    stem(images).sum().backward()  # trainable weights: the convolution as it is
    assert conv.weight.grad is not None
    conv.requires_grad_(False)

    def input_gradient(module):
        x = images.clone().requires_grad_(True)
        module(x).square().sum().backward()
        return x.grad

    input_gradient(stem)
    with torch.no_grad():
        conv.weight.mul_(-2)  # changed in place: the cached phase kernel must follow
    assert torch.allclose(input_gradient(stem), input_gradient(conv), atol=1e-4)
    with pytest.raises(ValueError, match="not a square"):
        StemConv2d(nn.Conv2d(3, 8, 3, stride=1))
