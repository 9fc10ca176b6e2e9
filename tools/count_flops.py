#!/usr/bin/env python
"""FLOPs (fvcore, one multiply-add = one flop) and parameters of detector configs, beside the paper's Table 2.

Each config is counted at its own input resolution on one sample of 6 cameras with the nuScenes rig's
geometry; no dataset and no weights are needed (the backbone's pretrained weights are not loaded,
FLOPs do not depend on them). Full-resolution configs take minutes and several GB of memory on a CPU.

    python tools/count_flops.py --config-file projects/BEVFormer/configs/tiny.yaml --json tiny_flops.json
    python tools/count_flops.py --config-file projects/BEVFormer/configs/base_star.yaml \\
        --config-file projects/BEVFormer/configs/tiny.yaml

Every --config-file is a config of its own, counted and compared.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from fd3d.config.cli import add_config_arguments, configs_from_args
from fd3d.evaluation.complexity import count_flops
from fd3d.modeling.registry import build_model

PROJECTS = Path(__file__).resolve().parents[1] / "projects"
# Table 2 of the FD3D paper (GFLOPs), keyed by <project>/<config> (projects/<project>/configs/<config>).
PAPER_GFLOPS = {
    "BEVFormer/base_star.yaml": 1845.36,
    "BEVFormer/tiny.yaml": 381.95,
    "BEVFormer/base.yaml": 1323.41,
    "BEVFormer/small.yaml": 416.46,
    "DETR3D/r101_dcn.yaml": 1016.83,
    "DETR3D/r50.yaml": 876.94,
}


def paper_key(path: str) -> str:
    """`projects/<Name>/configs/<file>` -> `<Name>/<file>`; any other path as given."""
    try:
        project, folder, *rest = Path(path).resolve().relative_to(PROJECTS).parts
    except ValueError:
        return Path(path).as_posix()
    return "/".join([project, *rest]) if folder == "configs" and rest else Path(path).as_posix()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_arguments(parser, multiple=True)
    parser.add_argument("--json", metavar="FILE", help="write the report(s) as JSON")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    reports = []
    for path, cfg in configs_from_args(args, extra=("MODEL.BACKBONE.PRETRAINED", "")):
        report = count_flops(build_model(cfg), tuple(cfg.INPUT.IMAGE_SIZE))
        paper = PAPER_GFLOPS.get(paper_key(path))
        entry = {
            "config": paper_key(path),
            "image_size": list(cfg.INPUT.IMAGE_SIZE),
            "gflops": round(report.gflops, 2),
            "params_m": round(report.params_m, 2),
            "by_module": {name: round(value, 2) for name, value in report.by_module.items()},
            "by_operator": {name: round(value, 2) for name, value in report.by_operator.items()},
            "paper_gflops": paper,
            "ratio_to_paper": round(report.gflops / paper, 3) if paper else None,
            "uncounted_ops": report.skipped_ops,
        }
        reports.append(entry)
        print(format_row(entry), flush=True)
        if report.skipped_ops:
            print(f"  not counted by fvcore: {report.skipped_ops}", file=sys.stderr)

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = reports[0] if len(reports) == 1 else reports
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def format_row(entry: dict) -> str:
    paper = (
        f"{entry['paper_gflops']:9.2f}  x{entry['ratio_to_paper']:.3f}"
        if entry["paper_gflops"]
        else "        -"
    )
    modules = ", ".join(f"{name} {value:.2f}" for name, value in entry["by_module"].items())
    operators = ", ".join(f"{name} {value:.2f}" for name, value in entry["by_operator"].items())
    height, width = entry["image_size"]
    return (
        f"{entry['config']:<32} {height}x{width:<5} {entry['gflops']:10.2f} GFLOPs "
        f"{entry['params_m']:8.2f} M params"
        f"  paper {paper}\n  by module (GFLOPs): {modules}\n  by operator (GFLOPs): {operators}"
    )


if __name__ == "__main__":
    sys.exit(main())
