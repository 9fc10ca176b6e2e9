"""`--config-file` on the command line: repeated, the files are overlays of one config; with `multiple`,
configs of their own."""

from __future__ import annotations

import argparse

import pytest

from fd3d.config import distill_config, load_config
from fd3d.config.cli import add_config_arguments, config_from_args, configs_from_args

PAIR, METHOD = (str(path) for path in distill_config("detr3d_cpu", "mask_on_gt"))


def parse(argv: list[str], multiple: bool = False, required: bool = True) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, multiple=multiple, required=required)
    return parser.parse_args(argv)


def test_two_config_files_are_overlays_of_one_config():
    args = parse(["--config-file", PAIR, "--config-file", METHOD, "DISTILL.SMGD.RATIO", "0.3"])
    cfg = config_from_args(args, extra=("OUTPUT_DIR", "/tmp/run"))
    assert cfg.MODEL.META_ARCHITECTURE == "DETR3D" and list(cfg.INPUT.IMAGE_SIZE) == [112, 200]  # apprentice
    assert list(cfg.DISTILL.SMGD.STAGES) == ["pv"] and cfg.DISTILL.HEAD.NUM_QUERIES == 100  # pair
    assert list(cfg.DISTILL.LOSSES) == ["smgd"] and cfg.DISTILL.SMGD.MASKS == "gt"  # method
    assert cfg.DISTILL.SMGD.RATIO == 0.3 and cfg.OUTPUT_DIR == "/tmp/run"  # overrides, then extra
    assert (
        cfg.dump()
        == load_config([PAIR, METHOD], ["DISTILL.SMGD.RATIO", "0.3", "OUTPUT_DIR", "/tmp/run"]).dump()
    )


def test_a_single_config_file_still_works_and_may_be_left_out():
    cfg = config_from_args(parse(["--config-file", PAIR]))
    assert cfg.DISTILL.LOSSES == [] and cfg.DISTILL.HEAD.NUM_QUERIES == 100
    assert config_from_args(parse(["SEED", "3"], required=False)).SEED == 3
    with pytest.raises(SystemExit):
        parse(["SEED", "3"])


def test_multiple_compares_each_config_file_on_its_own():
    compared = configs_from_args(parse(["--config-file", PAIR, "--config-file", METHOD], multiple=True))
    assert [path for path, _ in compared] == [PAIR, METHOD]
    assert compared[0][1].DISTILL.LOSSES == [] and compared[1][1].MODEL.META_ARCHITECTURE == "BEVFormer"
