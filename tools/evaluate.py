"""Score a nuScenes results JSON with the official devkit (detection_cvpr_2019).

Prints the metrics table and writes OUT/metrics.json (NDS, mAP, mATE, mASE, mAOE, mAVE, mAAE on the
devkit's 0-1 scale, and per-class AP) next to the devkit's own metrics_summary.json.

Example:
    python tools/evaluate.py --dataroot work/demo/data --version v1.0-trainval --eval-set val \\
        --results work/demo/live/fd3d/eval_final/results_nusc.json --out work/demo/eval_again

(`make demo` writes the data and each model's results_nusc.json used here.)
"""

from __future__ import annotations

import argparse

from fd3d.data.cli import add_dataroot_arguments
from fd3d.data.nuscenes import NuScenesReader
from fd3d.evaluation.nuscenes_eval import (
    SubmissionError,
    evaluate_submission,
    format_metrics,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_dataroot_arguments(parser, "--eval-set")
    parser.add_argument("--results", required=True, help="results JSON in the nuScenes submission format")
    parser.add_argument("--out", required=True, help="folder for metrics.json and the devkit's outputs")
    parser.add_argument(
        "--render-curves", action="store_true", help="also write the devkit's PR/TP plots (PDF)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    reader = NuScenesReader(args.dataroot, args.version)
    try:  # the results file is checked before the devkit sees it
        metrics = evaluate_submission(reader, args.results, args.eval_set, args.out, args.render_curves)
    except SubmissionError as error:
        raise SystemExit(f"error: {error}") from error
    print(format_metrics(metrics))
    print(f"wrote {args.out}/metrics.json")
    return metrics


if __name__ == "__main__":
    main()
