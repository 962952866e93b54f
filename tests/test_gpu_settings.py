"""What ``trainer=gpu`` changes, checked on a CPU: the mixed precision it picks for the GPU that
trains, and channels-last weights (``miro.lit.channels_last``) under a real Trainer."""

import copy
import warnings

import pytest
import pytorch_lightning as pl
import torch
from conftest import _TinyPosts, compose_config, fit_tiny, tiny_encoder
from hydra.utils import instantiate
from pytorch_lightning.plugins.precision import MixedPrecision

from miro.devices import mixed_precision
from miro.lit.channels_last import ChannelsLast
from miro.lit.text_supervised import TextSupervisedEncoder
from miro.models.stylizer import Stylizer


def test_mixed_precision_is_bf16_where_the_gpu_computes_it():
    assert mixed_precision(bf16_supported=True) == "bf16-mixed"
    assert mixed_precision(bf16_supported=False) == "16-mixed"
    ampere = torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0)
    assert mixed_precision() == ("bf16-mixed" if ampere else "16-mixed")


@pytest.mark.parametrize("trainer", ["gpu", "ddp"])
def test_gpu_trainers_choose_their_precision_when_built(trainer, tmp_path):
    overrides = ["+experiment=instagram_text", f"trainer={trainer}"]
    cfg = compose_config("train", overrides, tmp_path)
    assert cfg.trainer.accelerator == "gpu"
    assert instantiate(cfg.trainer.precision) == mixed_precision()  # 16-mixed without a GPU
    assert instantiate(cfg.callbacks.channels_last).device_types == ("cuda", "cpu")
    by_hand = compose_config("train", [*overrides, "trainer.precision=32"], tmp_path)
    assert by_hand.trainer.precision == 32

    # The choice reaches the Trainer as a string (here on the CPU, where Lightning trades
    # 16-mixed for bf16-mixed); deterministic=null leaves torch's global switches alone.
    on_cpu = ["trainer.accelerator=cpu", "trainer.devices=1", "trainer.deterministic=null"]
    if trainer == "ddp":
        on_cpu.append("trainer.strategy=auto")
    cpu = compose_config("train", [*overrides, *on_cpu], tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*AMP with fp16 is not supported on CPU")
        built = instantiate(cpu.trainer, logger=False)
    assert isinstance(built.precision_plugin, MixedPrecision)


def fit_encoder(tmp_path, callback: ChannelsLast) -> tuple[TextSupervisedEncoder, pl.Trainer, dict]:
    """A GoogLeNet text encoder trained 2 steps on eight 32 px posts on the CPU; the module,
    the trainer and the encoder's weights before training."""
    torch.manual_seed(0)
    module = tiny_encoder(lr=1e-2)
    before = copy.deepcopy(module.encoder.state_dict())
    trainer = fit_tiny(module, _TinyPosts(tmp_path), tmp_path, steps=2, callbacks=[callback])
    return module, trainer, before


def test_channels_last_converts_the_encoders_weights_and_it_trains(tmp_path):
    module, trainer, before = fit_encoder(tmp_path, ChannelsLast(device_types=["cpu"]))
    weights = [p for p in module.parameters() if p.dim() == 4]
    assert len(weights) == 57  # every conv of GoogLeNet
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not module.encoder.net.conv1.conv.weight.is_contiguous()  # 7×7: NHWC, not NCHW
    assert trainer.global_step == 2
    trained = module.encoder.state_dict()
    assert all(torch.isfinite(value).all() for value in trained.values())
    assert not torch.equal(trained["net.conv1.conv.weight"], before["net.conv1.conv.weight"])


def test_channels_last_leaves_runs_on_other_devices_alone(tmp_path):
    module, _, _ = fit_encoder(tmp_path, ChannelsLast(device_types=["cuda"]))
    assert module.encoder.net.conv1.conv.weight.is_contiguous()


@pytest.mark.parametrize(
    ("experiment", "device_types"),
    [
        ("instagram_text", ("cuda", "cpu")),
        ("miro_style", ("cuda",)),  # the style step on CPUs is tuned in NCHW
        ("synthetic_style_demo", ("cuda",)),
    ],
)
def test_each_experiment_converts_on_its_devices(experiment, device_types, tmp_path):
    cfg = compose_config("train", [f"+experiment={experiment}"], tmp_path)
    assert instantiate(cfg.callbacks.channels_last).device_types == device_types


def test_a_channels_last_stylizer_paints_the_same_images():
    torch.manual_seed(0)
    stylizer = Stylizer(num_styles=2, width=8, num_residual=1)
    converted = copy.deepcopy(stylizer).to(memory_format=torch.channels_last)
    images, styles = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    torch.testing.assert_close(converted(images, styles), stylizer(images, styles))
