"""Command-line conventions shared by the tools: `--config-file` plus trailing `KEY VALUE` overrides."""

from __future__ import annotations

import argparse

from fvcore.common.config import CfgNode

from fd3d.config.config import load_config

OVERLAY_HELP = (
    "YAML config (may inherit with _BASE_); repeat to merge overlays in order, later files winning, e.g. "
    "--config-file configs/distill/pairs/bevformer_cpu.yaml --config-file configs/distill/methods/fd3d.yaml"
)
COMPARE_HELP = "YAML config (may inherit with _BASE_, one file or a list); repeat to compare several"


def add_config_arguments(
    parser: argparse.ArgumentParser, multiple: bool = False, required: bool = True
) -> None:
    """`--config-file` and `opts`, detectron2's override syntax.

    Repeated `--config-file`s are the overlays of one config (`config_from_args`), or with `multiple`
    several configs to compare (`configs_from_args`), each of which may combine files with a `_BASE_` list.
    """
    parser.add_argument(
        "--config-file",
        required=required,
        action="append",
        metavar="FILE",
        help=COMPARE_HELP if multiple else OVERLAY_HELP,
    )
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        metavar="KEY VALUE",
        help="config overrides, e.g. INPUT.IMAGE_SIZE '[450, 800]' MODEL.HEAD.NUM_QUERIES 300",
    )


def config_from_args(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> CfgNode:
    """One frozen config: every --config-file merged in order, the command-line overrides, then `extra`."""
    return load_config(args.config_file, list(args.opts) + list(extra))


def configs_from_args(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> list[tuple[str, CfgNode]]:
    """(path, frozen config) of every --config-file on its own, the command-line overrides, then `extra`."""
    paths = args.config_file if isinstance(args.config_file, list) else [args.config_file]
    return [(path, load_config(path, list(args.opts) + list(extra))) for path in paths]
