#!/usr/bin/env python
"""Does FD3D beat the baselines? The paper's Tables 2-3 on synthetic nuScenes-format data, on a CPU.

    python tools/reproduce.py --quick --out work/reproduce_quick        # about 10 minutes on 2 cores
    python tools/reproduce.py --seeds 0 1 2 --out work/reproduce        # hours; resumable

1. generates a v1.0-trainval-format dataset with distinct scene layouts (official names; scored on the
   devkit's `val` split), or a v1.0-mini one with --quick;
2. trains the CPU-scale BEVFormer expert once and keeps it as a Hub-format folder in OUT/expert/model;
3. for every seed trains the apprentice alone and with each method (same data order, steps and
   cosine-to-zero schedule), distilling from cached expert features;
4. scores every model with the official evaluator and writes OUT/results.md, OUT/results.json and
   OUT/results.png (NDS mean ± std over seeds, gain over the apprentice, share of the gap closed);
5. measures the step time of distillation against apprentice-only training, and inference speed.

Every finished run (OUT/runs/<method>/seed<k>) keeps its model and metrics; a re-run only does what is
missing, and an interrupted run continues from its last checkpoint. Runs go method by method (apprentice,
FD3D, CWD first), all seeds of one before the next; `--report` trains nothing and writes the table from
the runs finished so far.

`--protocol warm` is the second protocol (a study that can tell the methods apart): every method starts
from one apprentice trained alone (the paper protocol's apprentice of seed 0, a stand-in for the paper's
pretrained apprentices) and trains --steps more steps, under the paper's loss weights and under weights
matched so that each method's gradient at the apprentice's features is the same fraction of the detection
loss's (calibrated once per method with `fd3d.engine.diagnose`, stored in OUT/warm/calibration/). It
includes the paper's mechanism ablations (CWD on PV only / BEV only, Table 4c; global / focal / GT masks,
Table 4a; QFD alone with the static and the layered head) and QFD's open choices (a 1x1 adapter on the
apprentice's own map, per-channel min-max). `--ray-artifacts STRENGTH` runs it against an expert whose
BEV has ray artefacts put in on purpose (OUT/warm_rays<STRENGTH>/). `--bev-range HALF_WIDTH` is the
variant where masks act: both BEV grids over ±HALF_WIDTH m instead of ±51.2 m, with the expert and the
warm-start apprentice fine-tuned at that range (OUT/range<HALF_WIDTH>/). Runs go seed by seed,
so `--seeds 0 1` then `--seeds 2 3 4` are chunks of one study; results in OUT/warm/results.{md,json}.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import torch

from fd3d.studies.dataset import data_overrides
from fd3d.studies.jobs import expert_overrides
from fd3d.studies.paper import expert, paper_study
from fd3d.studies.protocols import (
    FULL,
    PAPER_METHODS,
    QUICK,
    QUICK_METHODS,
    WARM,
    WARM_HEAD_TO_HEAD,
    WARM_METHODS,
    WARM_WEIGHTINGS,
)
from fd3d.studies.warm import WarmOptions, range_variant, warm_study


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small data, one seed, apprentice vs CWD vs FD3D"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--quick: 0)")
    parser.add_argument(
        "--protocol", choices=("paper", "warm"), default="paper", help="warm: the warm-start protocol"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=sorted(set(PAPER_METHODS) | set(WARM_METHODS)),
        default=None,
        help=f"default: all (warm: {' '.join(WARM_HEAD_TO_HEAD)})",
    )
    parser.add_argument(
        "--weightings",
        nargs="+",
        choices=WARM_WEIGHTINGS,
        default=list(WARM_WEIGHTINGS),
        help="warm protocol only",
    )
    parser.add_argument(
        "--head-pretrain-iters",
        type=int,
        default=WARM.head_pretrain,
        help="warm protocol: head-only steps before methods with a distillation head (default %(default)s)",
    )
    parser.add_argument(
        "--calibration-steps",
        type=int,
        default=WARM.calibration_steps,
        help="warm protocol: steps measured per method to match the weights (default %(default)s)",
    )
    parser.add_argument(
        "--ray-artifacts",
        type=float,
        default=0.0,
        metavar="STRENGTH",
        help="warm protocol: a controlled imperfect expert, DISTILL.EXPERT.RAY_ARTIFACTS.STRENGTH (results "
        "in OUT/warm_rays<STRENGTH>/, calibrated again; default 0: the expert as it is)",
    )
    parser.add_argument(
        "--bev-range",
        type=float,
        default=0.0,
        metavar="HALF_WIDTH",
        help="warm protocol: the variant where masks act, both BEV grids over ±HALF_WIDTH m (e.g. 25.6) with "
        "the expert and the warm-start apprentice fine-tuned at that range (OUT/range<HALF_WIDTH>/; "
        "default 0: the configs' ±51.2 m)",
    )
    parser.add_argument("--out", default=None, help="default work/reproduce (--quick: work/reproduce_quick)")
    parser.add_argument("--steps", type=int, default=None, help="steps of each apprentice run")
    parser.add_argument("--expert-steps", type=int, default=None, help="steps of the expert")
    parser.add_argument(
        "--report", action="store_true", help="train nothing; write the table from the runs finished so far"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    plan = asdict(QUICK if args.quick else FULL)
    plan["steps"] = args.steps or plan["steps"]
    plan["expert_steps"] = args.expert_steps or plan["expert_steps"]
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    known = WARM_METHODS if args.protocol == "warm" else PAPER_METHODS
    if args.protocol != "warm" and (args.bev_range or args.ray_artifacts):
        parser.error("--bev-range and --ray-artifacts are variants of --protocol warm")
    if unknown := sorted(set(args.methods or []) - set(known)):
        parser.error(f"--methods {unknown} are not methods of the {args.protocol} protocol: {sorted(known)}")
    chosen = args.methods or (QUICK_METHODS if args.quick else PAPER_METHODS)
    plan.update(seeds=seeds, methods=[m for m in PAPER_METHODS if m in chosen])
    out = Path(args.out or ("work/reproduce_quick" if args.quick else "work/reproduce"))
    out.mkdir(parents=True, exist_ok=True)

    data = data_overrides(out / "data", plan["version"])
    expert_run = expert(out, plan, data, args.report)
    if args.protocol == "paper":
        return paper_study(out, plan, data, expert_run, args.report)
    if args.bev_range:
        out, data, expert_run = range_variant(out, data, expert_run, args.bev_range, args.report)
    options = WarmOptions(args.methods, args.weightings, args.steps, args.head_pretrain_iters,
                          args.calibration_steps, args.ray_artifacts, args.report)  # fmt: skip
    return warm_study(out, data, expert_overrides(out, expert_run), expert_run, seeds, options)


if __name__ == "__main__":
    main()
