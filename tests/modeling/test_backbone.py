"""ResNet trunk: output geometry, frozen stages / frozen BN, DCNv2 equivalence, weight loading."""

from __future__ import annotations

import logging
import math

import huggingface_hub.constants
import pytest
import torch
from transformers import ResNetBackbone, ResNetConfig

from fd3d.modeling.backbone import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModulatedDeformConv2d,
    build_resnet_backbone,
    normalize_images,
)

TINY = {"depths": (1, 1, 1, 1), "hidden_sizes": (8, 16, 32, 64), "embedding_size": 8}


def _images(n: int = 2, h: int = 64, w: int = 96, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("layer_type", ["basic", "bottleneck"])
@pytest.mark.parametrize("hw", [(64, 96), (70, 100)])
def test_strides_channels_and_sizes(layer_type, hw):
    trunk = build_resnet_backbone(**TINY, layer_type=layer_type, out_stages=(2, 3, 4))
    h, w = hw
    outs = trunk(_images(h=h, w=w))
    assert trunk.strides == [8, 16, 32]
    assert trunk.out_channels == [16, 32, 64]
    # Every stride-2 op (7x7 p3, max-pool 3 p1, 3x3 p1, 1x1 p0) maps n -> ceil(n / 2), so ceil(H / stride).
    expected = [
        (2, c, math.ceil(h / s), math.ceil(w / s)) for c, s in zip([16, 32, 64], [8, 16, 32], strict=True)
    ]
    assert [tuple(o.shape) for o in outs] == expected
    assert expected[0][2:] == ((8, 12) if hw == (64, 96) else (9, 13))


def test_stage1_has_stride_4():
    trunk = build_resnet_backbone(**TINY, layer_type="basic", out_stages=(1, 4))
    assert trunk.strides == [4, 32]
    assert trunk.out_channels == [8, 64]
    assert [o.shape[-2:] for o in trunk(_images())] == [(16, 24), (2, 3)]


def test_frozen_stages_and_norm_eval_keep_running_stats():
    trunk = build_resnet_backbone(**TINY, layer_type="basic", frozen_stages=1, norm_eval=True)
    frozen_prefixes = ("body.embedder.", "body.encoder.stages.0.")
    for name, param in trunk.named_parameters():
        assert param.requires_grad == (not name.startswith(frozen_prefixes)), name
    trunk.train()
    assert trunk.training
    bns = [m for m in trunk.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not bn.training for bn in bns)
    before = {k: v.clone() for k, v in trunk.state_dict().items() if "running" in k}
    trunk(_images())
    after = trunk.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_without_norm_eval_only_frozen_parts_stay_in_eval():
    trunk = build_resnet_backbone(**TINY, layer_type="basic", frozen_stages=0, norm_eval=False).train()
    assert not trunk.body.embedder.embedder.normalization.training
    assert trunk.body.encoder.stages[0].layers[0].layer[0].normalization.training
    mean = trunk.body.encoder.stages[0].layers[0].layer[0].normalization.running_mean.clone()
    trunk(_images())
    assert not torch.equal(mean, trunk.body.encoder.stages[0].layers[0].layer[0].normalization.running_mean)
    assert all(not p.requires_grad for p in trunk.body.embedder.parameters())
    assert all(p.requires_grad for p in trunk.body.encoder.parameters())


def test_frozen_minus_one_freezes_nothing():
    trunk = build_resnet_backbone(**TINY, layer_type="basic", frozen_stages=-1)
    assert all(p.requires_grad for p in trunk.parameters())


@pytest.mark.parametrize("layer_type", ["basic", "bottleneck"])
def test_dcn_equals_plain_conv_at_init_and_offsets_get_gradient(layer_type):
    plain = build_resnet_backbone(**TINY, layer_type=layer_type, frozen_stages=-1)
    dcn = build_resnet_backbone(**TINY, layer_type=layer_type, frozen_stages=-1, dcn_stages=(3, 4))
    result = dcn.load_state_dict(plain.state_dict(), strict=False)  # DCN weights keep the conv's keys
    assert not result.unexpected_keys
    assert result.missing_keys and all(".conv_offset." in k for k in result.missing_keys)
    n_dcn = sum(isinstance(m, ModulatedDeformConv2d) for m in dcn.modules())
    assert n_dcn == (4 if layer_type == "basic" else 2)  # 2 stages x (2 convs basic | 1 bottleneck)
    images = _images()
    plain.eval()
    dcn.eval()
    for a, b in zip(plain(images), dcn(images), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    sum(o.square().sum() for o in dcn(images)).backward()
    stage4_dcn = next(m for m in dcn.body.encoder.stages[3].modules() if isinstance(m, ModulatedDeformConv2d))
    offset_conv = stage4_dcn.conv_offset
    assert offset_conv.weight.grad is not None and offset_conv.weight.grad.abs().sum() > 0


def test_modulated_deform_conv_matches_conv_with_stride():
    conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=True)
    x = torch.randn(2, 4, 9, 11, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ModulatedDeformConv2d.from_conv(conv)(x), conv(x), rtol=1e-5, atol=1e-5)


def test_random_init_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="fd3d.modeling.backbone"):
        build_resnet_backbone(**TINY, layer_type="basic")
    assert "randomly initialised" in caplog.text


def test_pretrained_offline_raises_with_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(RuntimeError) as info:
        build_resnet_backbone(pretrained="microsoft/resnet-50")
    assert "microsoft/resnet-50" in str(info.value)
    assert '""' in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def _save_tiny(path, layer_type: str = "basic") -> ResNetBackbone:
    config = ResNetConfig(**TINY, layer_type=layer_type, out_features=["stage2", "stage3", "stage4"])
    torch.manual_seed(3)
    source = ResNetBackbone(config).eval()
    source.save_pretrained(path)
    return source


def test_local_folder_round_trip(tmp_path, caplog):
    source = _save_tiny(tmp_path)
    with caplog.at_level(logging.INFO, logger="fd3d.modeling.backbone"):
        trunk = build_resnet_backbone(**TINY, layer_type="basic", pretrained=str(tmp_path), out_stages=(3, 4))
    assert str(tmp_path) in caplog.text
    trunk.eval()
    images = _images()
    expected = source(images).feature_maps[1:]
    got = trunk(images)
    assert len(got) == 2
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_pretrained_config_mismatch_raises(tmp_path):
    _save_tiny(tmp_path)
    with pytest.raises(ValueError, match=r"depths=\[1, 1, 1, 1\].*depths=\[1, 2, 1, 1\]"):
        build_resnet_backbone(
            depths=(1, 2, 1, 1), hidden_sizes=(8, 16, 32, 64), embedding_size=8, layer_type="basic",
            pretrained=str(tmp_path),
        )  # fmt: skip


def test_missing_local_folder_raises_runtime_error(tmp_path):
    missing = str(tmp_path / "no_such_weights")
    with pytest.raises(RuntimeError, match="no_such_weights"):
        build_resnet_backbone(**TINY, layer_type="basic", pretrained=missing)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"out_stages": (3, 2)},
        {"out_stages": (5,)},
        {"dcn_stages": (0,)},
        {"frozen_stages": 5},
        {"layer_type": "x"},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        build_resnet_backbone(**{**TINY, "layer_type": "basic", **kwargs})


def test_normalize_images_values():
    images = torch.tensor([[[[0, 255]], [[116, 0]], [[104, 255]]]], dtype=torch.uint8)  # (1, 3, 1, 2)
    out = normalize_images(images)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    expected = torch.tensor(
        [
            [-mean[0] / std[0], (255 - mean[0]) / std[0]],
            [(116 - mean[1]) / std[1], -mean[1] / std[1]],
            [(104 - mean[2]) / std[2], (255 - mean[2]) / std[2]],
        ]
    ).view(1, 3, 1, 2)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected)
    assert out[0, 0, 0, 0].item() == pytest.approx(-2.1179, abs=1e-4)


def test_normalize_images_rejects_float():
    with pytest.raises(TypeError, match="uint8"):
        normalize_images(torch.zeros(3, 2, 2))
