import pytest
import torch
from hydra.utils import instantiate
from torchvision.models import GoogLeNet

from miro.models.weights import WeightsNotFoundError


def imagenet_like_state_dict() -> dict[str, torch.Tensor]:
    """A GoogLeNet state dict shaped like torchvision's ImageNet file (aux heads included)."""
    torch.manual_seed(123)
    return GoogLeNet(aux_logits=True, init_weights=True).state_dict()


def test_pretrained_imagenet_loads_from_torch_home(compose_train, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    state = imagenet_like_state_dict()
    torch.save(state, checkpoints / "googlenet-1378be20.pth")

    cfg = compose_train("model.pretrained=imagenet")
    encoder = instantiate(cfg.model)

    assert torch.equal(
        encoder.net.inception4c.branch1.conv.weight, state["inception4c.branch1.conv.weight"]
    )
    assert encoder.net.fc.out_features == cfg.text.num_topics  # a new head into the text space
    assert encoder.net.transform_input


def test_weights_path_loads_a_local_file(compose_train, tmp_path):
    state = imagenet_like_state_dict()
    torch.save(state, tmp_path / "mine.pth")
    encoder = instantiate(compose_train(f"model.weights_path={tmp_path / 'mine.pth'}").model)
    assert torch.equal(encoder.net.conv1.conv.weight, state["conv1.conv.weight"])


def test_missing_weights_offline_name_the_file_and_folder(compose_train, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(Exception) as raised:
        instantiate(compose_train("model.pretrained=imagenet").model)
    cause = raised.value.__cause__ or raised.value
    assert isinstance(cause, WeightsNotFoundError)
    assert "googlenet-1378be20.pth" in str(cause)
    assert str(tmp_path / "empty" / "hub" / "checkpoints") in str(cause)
    assert "model.weights_path" in str(cause)


def test_a_state_dict_of_another_model_is_refused(tmp_path):
    from miro.models.googlenet import GoogLeNetEncoder

    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "vgg.pth")
    with pytest.raises(ValueError, match="not a GoogLeNet state dict"):
        GoogLeNetEncoder(40, weights_path=str(tmp_path / "vgg.pth"))


def test_scratch_model_is_seeded():
    from miro.models.googlenet import GoogLeNetEncoder

    torch.manual_seed(0)
    a = GoogLeNetEncoder(8)
    torch.manual_seed(0)
    b = GoogLeNetEncoder(8)
    assert torch.equal(a.net.fc.weight, b.net.fc.weight)
    assert not a.net.transform_input
