#!/usr/bin/env python
"""Does distillation pay once the apprentice detects? The paper's protocol (Tables 2-3) on a CPU pair.

    python tools/distillation_study.py --out work/study --seeds 0 1 2 --methods apprentice fd3d
    python tools/distillation_study.py --out work/study --report

The pair is `configs/distill/pairs/bevformer_cpu_bev50.yaml`: the shipped expert
(projects/BEVFormer/zoo/cpu_expert, trained on this study's data) and an apprentice with half its image
size, half its encoder layers, a lighter backbone and a BEV grid of the same 2.05 m cells. Every method
trains from the same initialisation for the whole schedule with distillation throughout (the paper's
protocol), under three weightings:
- `paper`: the method's config weights as shipped;
- `calibrated`: `DISTILL.STAGE_SCALE` set so that at each stage (PV, BEV) the method's terms carry
  FRACTION of the detection loss's gradient there, measured on train batches over the first
  CALIBRATION_STEPS steps of a from-scratch run (OUT/calibration/<method>.json; nothing is tuned on val);
- `balanced`: from the same measurement, `DISTILL.LOSS_STAGE_SCALE` splits each stage's FRACTION equally
  between the losses with terms there (RESULTS/calibration/balanced/<method>.json). It differs from
  `calibrated` only where a stage holds two losses: FD3D's BEV (SMGD and QFD), where the stage scale
  keeps their paper ratio and leaves SMGD's BEV term at ~1/60 of the detection gradient.

1. generates the study's data (the expert's: 60 train + 10 val scene layouts, seed 1000) unless present,
   and scores the zoo expert on its val split (OUT/expert);
2. for every seed and method, trains (or resumes, or reuses) OUT/runs/<method>[@<weighting>]/seed<k>,
   evaluating every EVAL_PERIOD steps on val: the learning curves;
3. records every finished run in the committed ledger RESULTS/runs/<run>/seed<k>.json (metrics, learning
   curve, weights' sha256, CKA with the expert), so that the study outlives its work folder, and writes
   RESULTS/results.{md,json,png}: every method's NDS and mAP (mean ± std over seeds), its gain and the
   share of the expert-apprentice gap it closes, paired-by-seed differences (vs the apprentice, FD3D vs
   each baseline) with 95 % Student-t intervals, and the learning curves of every method in one figure.

A run finished before is reused; a killed one continues from its last checkpoint. Chunks of one study are
calls with other --seeds / --methods on the same --out; `--report` trains nothing. `--adopt-zoo` records
the zoo's seed-0 entries (shipped from this study by `--ship-zoo`) as the seed-0 runs, after scoring them
again on the regenerated val split and checking the scores equal their cards'.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fd3d.studies.dataset import data_overrides
from fd3d.studies.distillation import report, run_study, study_plan
from fd3d.studies.protocols import ROOT, STUDY, STUDY_EXPERT, STUDY_METHODS, STUDY_RESULTS, STUDY_WEIGHTINGS
from fd3d.studies.zoo import ZOO_ENTRIES, adopt_zoo, ship_to_zoo


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="work/study", help="study folder (default %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default 0 1 2")
    parser.add_argument("--methods", nargs="+", choices=list(STUDY_METHODS), default=list(STUDY_METHODS))
    parser.add_argument("--weightings", nargs="+", choices=STUDY_WEIGHTINGS, default=["calibrated"])
    parser.add_argument(
        "--steps", type=int, default=STUDY.steps, help="steps of every run (default %(default)s)"
    )
    parser.add_argument(
        "--eval-period",
        type=int,
        default=STUDY.eval_period,
        help="steps between val evaluations (default %(default)s)",
    )
    parser.add_argument(
        "--calibration-steps", type=int, default=STUDY.calibration_steps, help="default %(default)s"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    parser.add_argument(
        "--results",
        default=str(STUDY_RESULTS.relative_to(ROOT)),
        help="ledger and report folder (default %(default)s)",
    )
    parser.add_argument("--report", action="store_true", help="train nothing; report the finished runs")
    parser.add_argument(
        "--adopt-zoo",
        action="store_true",
        help=f"train nothing; score the zoo's seed-0 entries {list(ZOO_ENTRIES)} on OUT's val split "
        "and record them as the seed-0 runs (the regenerated data must give their cards' metrics)",
    )
    parser.add_argument(
        "--ship-zoo",
        action="store_true",
        help=f"train nothing; write the seed-0 runs {list(ZOO_ENTRIES)} into projects/BEVFormer/zoo/",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out, results = Path(args.out), Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    plan = study_plan(args.steps, args.eval_period, args.calibration_steps)
    data = data_overrides(out / "data", plan["version"])
    if args.ship_zoo:
        ship_to_zoo(out, results, plan, STUDY_EXPERT.parent)
        return {}
    if args.adopt_zoo:
        adopt_zoo(out, results, data, plan["steps"])
    if not args.report and not args.adopt_zoo:
        run_study(out, results, plan, data, args.seeds, args.methods, args.weightings)
    found = report(out, results, plan)
    print((results / "results.md").read_text())
    return found


if __name__ == "__main__":
    main()
