"""Config loading: every shipped file loads, inheritance and overrides apply, and mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from fd3d.config import ConfigError, load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
ALL_CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml"))


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.is_frozen()
    assert cfg.MODEL.META_ARCHITECTURE in ("BEVFormer", "DETR3D")


def test_inheritance_chain_applies_each_level():
    tiny = load_config(CONFIG_DIR / "BEVFormer" / "tiny.yaml")
    # from small.yaml
    assert tiny.MODEL.BEVFORMER.BEV_H == 100 and tiny.MODEL.BEVFORMER.ENCODER_LAYERS == 3
    assert list(tiny.INPUT.IMAGE_SIZE) == [450, 800]
    # from tiny.yaml itself
    assert list(tiny.MODEL.BACKBONE.DEPTHS) == [3, 4, 6, 3] and list(tiny.MODEL.BACKBONE.DCN_STAGES) == []
    # from the base
    assert tiny.MODEL.BEVFORMER.QUEUE_LENGTH == 3 and tiny.MODEL.HEAD.NUM_QUERIES == 900
    base = load_config(CONFIG_DIR / "BEVFormer" / "base.yaml")
    assert list(base.MODEL.BACKBONE.DCN_STAGES) == [3, 4] and base.MODEL.BEVFORMER.BEV_H == 200


def test_command_line_overrides_win_and_are_decoded():
    cfg = load_config(
        CONFIG_DIR / "BEVFormer" / "tiny.yaml",
        ["MODEL.BEVFORMER.BEV_H", "50", "INPUT.IMAGE_SIZE", "[112, 200]", "OUTPUT_DIR", "/tmp/run"],
    )
    assert cfg.MODEL.BEVFORMER.BEV_H == 50
    assert list(cfg.INPUT.IMAGE_SIZE) == [112, 200]
    assert cfg.OUTPUT_DIR == "/tmp/run"


def test_unknown_override_names_the_key_and_lists_valid_ones():
    with pytest.raises(ConfigError) as info:
        load_config(CONFIG_DIR / "BEVFormer" / "tiny.yaml", ["MODEL.BEVFORMER.BEV_HEIGHT", "50"])
    message = str(info.value)
    assert "MODEL.BEVFORMER.BEV_HEIGHT" in message
    assert "BEV_H" in message and "QUEUE_LENGTH" in message  # the valid keys of that section
    assert "Did you mean MODEL.BEVFORMER.BEV_H" in message


def test_unknown_key_in_a_file_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f'_BASE_: "{CONFIG_DIR / "Base-DETR3D.yaml"}"\nSOLVERR:\n  LR: 0.1\n')
    with pytest.raises(ConfigError, match="'SOLVERR'.*Valid keys under the root"):
        load_config(bad)


def test_detector_keys_exist_only_for_their_architecture():
    with pytest.raises(ConfigError, match="MODEL.BEVFORMER"):
        load_config(CONFIG_DIR / "DETR3D" / "r50.yaml", ["MODEL.BEVFORMER.BEV_H", "50"])


def test_wrong_value_type_names_the_source():
    with pytest.raises(ConfigError, match="command-line overrides"):
        load_config(CONFIG_DIR / "DETR3D" / "r50.yaml", ["MODEL.HEAD.NUM_QUERIES", "many"])


def test_odd_overrides_missing_file_and_unknown_architecture():
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(None, ["MODEL.HEAD.NUM_QUERIES"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(CONFIG_DIR / "nope.yaml")
    with pytest.raises(ConfigError, match=r"registered: \['BEVFormer', 'DETR3D'\]"):
        load_config(None, ["MODEL.META_ARCHITECTURE", "PETR"])
