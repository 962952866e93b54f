"""Style transfer building blocks: conditional instance norm, losses, the VGG-16 loss network,
safe image loading and the content data module."""

import logging
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CONF, compose_config
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

from miro.images import find_images, read_image
from miro.lit.content_data import ContentImagesDataModule, ContentImagesNotFoundError
from miro.losses import content_loss, gram_matrix, style_loss, total_variation
from miro.models.checkpoints import stylizer_config
from miro.models.stylizer import (
    ConditionalInstanceNorm2d,
    Stylizer,
    add_styles,
    fast_inference,
    narrow_conv,
    upsample_conv,
)
from miro.models.vgg import LAYER_NAMES, VGG16Features, build_features
from miro.models.weights import WeightsNotFoundError


def randomized(stylizer: Stylizer, seed: int = 0) -> Stylizer:
    """Distinct γ/β rows per style, as after training (they start all equal)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for table in stylizer.norm_parameters():
            table.add_(torch.randn(table.shape, generator=generator) * 0.5)
    return stylizer


def test_conditional_norm_uses_each_elements_own_row():
    norm = ConditionalInstanceNorm2d(channels=2, num_styles=3)
    with torch.no_grad():
        norm.gamma.copy_(torch.tensor([[1.0, 1.0], [2.0, 3.0], [-1.0, 0.5]]))
        norm.beta.copy_(torch.tensor([[0.0, 0.0], [10.0, 20.0], [-5.0, 7.0]]))
    x = torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(0))
    styles = torch.tensor([2, 0, 1])
    out = norm(x, F.one_hot(styles, 3).float())
    normalized = (x - x.mean(dim=(2, 3), keepdim=True)) / torch.sqrt(
        x.var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-5
    )
    for i, style in enumerate(styles.tolist()):
        gamma, beta = norm.gamma[style].view(2, 1, 1), norm.beta[style].view(2, 1, 1)
        torch.testing.assert_close(out[i], normalized[i] * gamma + beta)


def test_stylizer_batch_of_styles_matches_one_style_at_a_time():
    stylizer = randomized(Stylizer(num_styles=3, width=8, num_residual=1)).eval()
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    batch = stylizer(images, torch.tensor([1, 2, 0]))
    for i, style in enumerate([1, 2, 0]):
        torch.testing.assert_close(
            batch[i : i + 1], stylizer(images[i : i + 1], torch.tensor([style]))
        )
    assert not torch.allclose(batch[0], stylizer(images[:1], torch.tensor([0]))[0])


def test_mixing_weights_of_one_style_reproduce_it_exactly():
    stylizer = randomized(Stylizer(num_styles=4, width=8, num_residual=1)).eval()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    for style in range(4):
        weights = torch.zeros(2, 4)
        weights[:, style] = 1.0
        assert torch.equal(stylizer(images, weights), stylizer(images, torch.tensor([style] * 2)))


def test_fused_in_place_norm_equals_the_per_element_norm():
    norm = ConditionalInstanceNorm2d(channels=5, num_styles=3)
    with torch.no_grad():
        norm.gamma.add_(torch.randn(3, 5, generator=torch.Generator().manual_seed(4)))
        norm.beta.add_(torch.randn(3, 5, generator=torch.Generator().manual_seed(5)))
    x = 3 * torch.randn(1, 5, 7, 9, generator=torch.Generator().manual_seed(6)) + 2
    for weights in (torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[0.2, 0.5, 0.3]])):
        expected = norm(x, weights)
        for layout in (torch.contiguous_format, torch.channels_last):
            inplace = x.clone(memory_format=layout)
            with torch.inference_mode():
                mean, var = norm.normalize_(inplace, weights)
            torch.testing.assert_close(inplace, expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(mean, x.mean(dim=(0, 2, 3)))
            torch.testing.assert_close(var, x.var(dim=(0, 2, 3), unbiased=False), rtol=1e-4, atol=0)
        # Frozen statistics (what tiling gives every tile) are used as given.
        frozen = x[..., :4, :5].clone()
        with torch.inference_mode():
            norm.normalize_(frozen, weights, mean, var)
        gamma, beta = (weights @ norm.gamma).view(5, 1, 1), (weights @ norm.beta).view(5, 1, 1)
        by_hand = (x[0, :, :4, :5] - mean.view(5, 1, 1)) / torch.sqrt(var.view(5, 1, 1) + 1e-5)
        torch.testing.assert_close(frozen[0], by_hand * gamma + beta, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_folded_upsample_and_split_output_convs_equal_their_definitions(layout):
    generator = torch.Generator().manual_seed(7)
    x = torch.rand(2, 6, 9, 13, generator=generator).contiguous(memory_format=layout)
    up = torch.nn.Conv2d(6, 4, 3)
    expected = up(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1,) * 4, mode="reflect"))
    with torch.no_grad():
        torch.testing.assert_close(upsample_conv(up, x), expected, atol=1e-5, rtol=1e-5)
    out = torch.nn.Conv2d(6, 3, 9)
    with torch.no_grad():
        expected = out(F.pad(x, (4,) * 4, mode="reflect"))
        torch.testing.assert_close(narrow_conv(out, x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
def test_training_takes_the_definitions_gradients_through_the_faster_layers(batch):
    """Training runs the folded upsampling, the split output conv and the one-pass conditional
    norm: the same gradients, for the input and every parameter, as the plain layers'. A batch
    of one too: its norm reads the split output conv's result without a reshaping copy."""
    stylizer = randomized(Stylizer(num_styles=3, width=8, num_residual=1), seed=5)
    images = torch.rand(batch, 3, 20, 28, generator=torch.Generator().manual_seed(6))
    styles = torch.tensor([2, 0])[:batch]

    def gradients() -> list[torch.Tensor]:
        stylizer.zero_grad()
        x = images.clone().requires_grad_(True)
        # A mean's gradient arrives dense and NCHW, whatever layout the output has.
        stylizer(x, styles).square().mean().backward()
        return [x.grad, *(p.grad for p in stylizer.parameters())]

    fast = gradients()
    with mock.patch("miro.models.stylizer.exporting", lambda: True):  # the plain layers
        plain = gradients()
    assert len(fast) == len(plain) > 20
    scale = max(expected.abs().max() for expected in plain)  # biases before a norm get ~0
    for got, expected in zip(fast, plain, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5 * scale, rtol=1e-4)


@pytest.mark.parametrize(
    "architecture", [{}, {"width": 8, "separable": True}], ids=["default", "thin"]
)
def test_fast_inference_is_the_same_function_as_the_layer_by_layer_path(architecture):
    stylizer = randomized(Stylizer(num_styles=4, **architecture), seed=3).eval()
    images = torch.rand(3, 3, 36, 44, generator=torch.Generator().manual_seed(8))
    cases = {
        "one style for all": torch.tensor([2, 2, 2]),
        "a style per image": torch.tensor([0, 3, 1]),
        "mixing weights": torch.tensor(
            [[0.7, 0.3, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.5, 0.5]]
        ),
        "one weight row for all": torch.tensor([[0.25, 0.0, 0.75, 0.0]]),
    }
    for case, styles in cases.items():
        reference = stylizer(images, styles)  # autograd on: the layer-by-layer path
        assert reference.grad_fn is not None
        with torch.inference_mode():
            assert fast_inference(images)
            fast = stylizer(images, styles)
            weights = (F.one_hot(styles, 4).float() if styles.dim() == 1 else styles).expand(3, -1)
            one_by_one = [stylizer.infer(images[i : i + 1], weights[i : i + 1]) for i in range(3)]
        assert torch.equal(fast, torch.cat(one_by_one)), case  # forward took Stylizer.infer
        assert fast.shape == images.shape and fast.is_contiguous()
        assert (fast - reference).abs().max() < 1e-4, case
    with torch.no_grad():
        assert not stylizer(images, cases["mixing weights"]).requires_grad


def test_gram_matrix_by_hand():
    # Two channels over a 2×2 map: F = [[1, 2, 3, 4], [0, 1, 0, 1]], G = FFᵀ / (H·W).
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    expected = torch.tensor([[[30.0, 6.0], [6.0, 2.0]]]) / 4
    torch.testing.assert_close(gram_matrix(features), expected)
    assert gram_matrix(features.half()).dtype == torch.float32
    nhwc = features.contiguous(memory_format=torch.channels_last)  # VGG16Features' layout
    torch.testing.assert_close(gram_matrix(nhwc), expected)
    wide = torch.randn(2, 5, 3, 4).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(gram_matrix(wide), gram_matrix(wide.contiguous()))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_gradient_is_the_products(layout):
    """The Gram's one-product gradient equals autograd's through FFᵀ / (H·W), for any
    (not only symmetric) upstream gradient."""
    features = torch.randn(2, 6, 5, 7).contiguous(memory_format=layout).requires_grad_(True)
    upstream = torch.randn(2, 6, 6)
    (gram_matrix(features) * upstream).sum().backward()
    flat = features.detach().reshape(2, 6, 35).requires_grad_(True)
    (torch.bmm(flat, flat.transpose(1, 2)) / 35 * upstream).sum().backward()
    torch.testing.assert_close(features.grad.reshape(2, 6, 35), flat.grad)


def test_style_content_and_tv_losses_by_hand():
    features = {"a": torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])}
    target = {"a": torch.zeros(1, 2, 2)}
    # Mean of the squared Gram entries [[7.5, 1.5], [1.5, 0.5]].
    expected = (7.5**2 + 2 * 1.5**2 + 0.5**2) / 4
    torch.testing.assert_close(style_loss(features, target), torch.tensor([expected]))
    torch.testing.assert_close(
        style_loss(features, target, {"a": 2.0}), torch.tensor([2 * expected])
    )
    assert content_loss(torch.ones(2, 3), torch.zeros(2, 3)).item() == 1.0
    stripes = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # vertical stripes: only x-differences
    assert total_variation(stripes).item() == 1.0
    assert total_variation(torch.full((1, 3, 4, 4), 0.3)).item() == 0.0


def test_new_style_rows_start_at_the_mean_of_the_old():
    state = randomized(Stylizer(num_styles=2, width=4, num_residual=1)).state_dict()
    grown = add_styles(state, new_styles=2)
    key = "blocks.0.norm.gamma"
    assert grown[key].shape == (4, 4)
    assert torch.equal(grown[key][:2], state[key])
    torch.testing.assert_close(grown[key][3], state[key].mean(0))
    assert torch.equal(grown["blocks.0.conv.weight"], state["blocks.0.conv.weight"])
    grown_model = Stylizer(num_styles=4, width=4, num_residual=1)
    grown_model.load_state_dict(grown)
    config = stylizer_config(grown_model, ["a", "b", "c", "d"])
    assert config == {
        "num_styles": 4,
        "width": 4,
        "num_residual": 1,
        "separable": False,
        "style_names": list("abcd"),
    }
    thin = Stylizer(num_styles=2, width=4, num_residual=1, separable=True)
    assert stylizer_config(thin, ["a", "b"])["separable"] is True


def test_vgg_taps_and_only_the_needed_layers(caplog):
    with caplog.at_level(logging.WARNING):
        vgg = VGG16Features(weights=None)
    assert "random weights" in caplog.text
    assert len(vgg.features) == LAYER_NAMES.index("relu4_3") + 1 == 23
    taps = vgg(torch.rand(2, 3, 64, 64))
    assert {name: tuple(t.shape) for name, t in taps.items()} == {
        "relu1_2": (2, 64, 64, 64),
        "relu2_2": (2, 128, 32, 32),
        "relu3_3": (2, 256, 16, 16),
        "relu4_3": (2, 512, 8, 8),
    }
    assert len(VGG16Features(["relu2_2"], weights=None).features) == 9

    called = []
    for index, layer in enumerate(vgg.features):
        layer.register_forward_hook(lambda *_, index=index: called.append(index))
    assert list(vgg(torch.rand(1, 3, 32, 32), ["relu2_2"])) == ["relu2_2"]
    assert max(called) == LAYER_NAMES.index("relu2_2")

    vgg.train()
    assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())
    with pytest.raises(ValueError, match="unknown VGG-16 layers"):
        VGG16Features(["relu9_9"], weights=None)


def test_vgg_weights_from_torch_home_through_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(3)
    state = {f"features.{k}": v for k, v in build_features(len(LAYER_NAMES)).state_dict().items()}
    state["classifier.6.weight"] = torch.zeros(10, 4)  # the head is there, and ignored
    torch.save(state, checkpoints / "vgg16-397923af.pth")  # VGG16_Weights.IMAGENET1K_V1's file

    cfg = compose_config("train", ["+experiment=miro_style"], tmp_path)
    assert cfg.model.loss_net.weights == "IMAGENET1K_V1"
    vgg = instantiate(cfg.model.loss_net)
    assert torch.equal(vgg.features[21].weight, state["features.21.weight"])  # conv4_3
    assert len(vgg.features) == 23

    torch.save(state, tmp_path / "mine.pth")
    local = VGG16Features(weights=None, weights_path=str(tmp_path / "mine.pth"))
    assert torch.equal(local.features[0].bias, state["features.0.bias"])


def test_missing_vgg_weights_offline_name_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsNotFoundError) as raised:
        VGG16Features(weights="IMAGENET1K_V1")
    message = str(raised.value)
    assert "vgg16-397923af.pth" in message
    assert str(tmp_path / "empty" / "hub" / "checkpoints") in message
    assert "model.loss_net.weights_path" in message and "model.loss_net.weights=null" in message


def save_image(path, size=(40, 30), seed=0, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)


def test_content_folder_recursive_with_bad_files_skipped_and_counted(tmp_path, caplog):
    folder = tmp_path / "photos"
    save_image(folder / "a.jpg", seed=0)
    save_image(folder / "sub" / "b.PNG", seed=1, mode="RGBA")
    save_image(folder / "sub" / "deeper" / "c.webp", seed=2)
    save_image(folder / "d.jpeg", size=(200, 120), seed=3)
    save_image(folder / ".hidden" / "e.jpg", seed=4)
    (folder / "garbage.jpg").write_bytes(b"not an image at all")
    (folder / "notes.txt").write_text("not an image")
    save_image(tmp_path / "whole.jpg", size=(64, 64), seed=5)  # header fine, body cut short
    data = (tmp_path / "whole.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])

    assert len(find_images(folder)) == 6  # not .hidden/, not notes.txt
    with caplog.at_level(logging.INFO):
        datamodule = ContentImagesDataModule(
            image_dir=str(folder), image_size=16, batch_size=2, num_workers=0, val_images=1
        )
    assert "5 readable, 1 unreadable skipped" in caplog.text
    datamodule.setup()
    batches = list(datamodule.train_dataloader())  # the truncated file is replaced, no crash
    assert sum(len(b) for b in batches) == 4 and batches[0].shape[1:] == (3, 16, 16)
    assert "skipping unreadable content image" in caplog.text and "truncated.jpg" in caplog.text
    assert float(batches[0].min()) >= 0 and float(batches[0].max()) <= 1
    val = next(iter(datamodule.val_dataloader()))
    assert val.shape == (1, 3, 16, 16)
    assert torch.equal(val, next(iter(datamodule.val_dataloader())))  # fixed center crops
    large = read_image(folder / "d.jpeg", min_side=16)
    assert min(large.shape[1:]) >= 16 and large.dtype == torch.uint8


def test_missing_or_empty_content_folder_says_how_to_make_one(tmp_path):
    for folder in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(ContentImagesNotFoundError) as raised:
            ContentImagesDataModule(image_dir=str(folder))
        assert str(folder) in str(raised.value)
        assert "python -m data_pipeline.synthetic" in str(raised.value)
    with pytest.raises(ContentImagesNotFoundError, match=r"manifest\.parquet"):
        ContentImagesDataModule(dataset_dir=str(tmp_path / "dataset"))


def test_content_from_a_built_dataset(tmp_path):
    from data_pipeline.build import build_dataset
    from data_pipeline.synthetic import GeneratorSettings, generate_posts

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        tokenizer = instantiate(compose("build").tokenizer)
    settings = GeneratorSettings(min_size=64, max_size=80, max_motifs=1)
    generate_posts(tmp_path / "raw", num_posts=30, seed=0, settings=settings)
    build_dataset(tmp_path / "raw", tmp_path / "dataset", tokenizer, progress=False)

    cfg = compose_config(
        "train",
        ["+experiment=miro_style", "data.image_size=32", "data.num_workers=0", "data.val_images=2"],
        tmp_path,
    )
    assert cfg.data.dataset_dir == str(tmp_path / "data" / "dataset")
    datamodule = instantiate(cfg.data, dataset_dir=str(tmp_path / "dataset"))
    assert len(datamodule.val_paths) == 2
    assert not set(datamodule.val_paths) & set(datamodule.train_paths)
    datamodule.setup()
    assert next(iter(datamodule.train_dataloader())).shape == (4, 3, 32, 32)
