"""Command-line conventions shared by the tools: `--config-file` plus trailing `KEY VALUE` overrides."""

from __future__ import annotations

import argparse

from fvcore.common.config import CfgNode

from fd3d.config.config import load_config


def add_config_arguments(parser: argparse.ArgumentParser, multiple: bool = False) -> None:
    """`--config-file` (repeatable when `multiple`) and `opts`, detectron2's override syntax."""
    parser.add_argument(
        "--config-file",
        required=True,
        action="append" if multiple else "store",
        metavar="FILE",
        help="YAML config (may inherit with _BASE_)" + ("; repeat to compare several" if multiple else ""),
    )
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        metavar="KEY VALUE",
        help="config overrides, e.g. INPUT.IMAGE_SIZE '[450, 800]' MODEL.HEAD.NUM_QUERIES 300",
    )


def configs_from_args(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> list[tuple[str, CfgNode]]:
    """(path, frozen config) for every --config-file, with the command-line overrides then `extra`."""
    paths = args.config_file if isinstance(args.config_file, list) else [args.config_file]
    return [(path, load_config(path, list(args.opts) + list(extra))) for path in paths]
