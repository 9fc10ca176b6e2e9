"""Command-line arguments every tool that reads a nuScenes-format dataroot shares."""

from __future__ import annotations

import argparse

from fd3d.data.schema import VERSIONS


def add_dataroot_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    split_flag: str = "--split",
    required: bool = True,
) -> None:
    """--dataroot, --version and an official split (`split_flag`, e.g. --split or --eval-set)."""
    parser.add_argument("--dataroot", required=required, help="nuScenes-format dataroot (real or synthetic)")
    parser.add_argument("--version", default="v1.0-mini", choices=VERSIONS)
    parser.add_argument(
        split_flag, default="mini_val", help="official split: mini_val, val, ... (default mini_val)"
    )
