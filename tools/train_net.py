#!/usr/bin/env python
"""Train an expert, an apprentice, or distil an apprentice from an expert; or evaluate any model.

    accelerate launch tools/train_net.py --config-file configs/distill/pairs/bevformer_cpu.yaml \\
        --config-file configs/distill/methods/fd3d.yaml DISTILL.EXPERT.WEIGHTS work/expert/model \\
        OUTPUT_DIR work/fd3d
    python tools/train_net.py --config-file projects/BEVFormer/configs/cpu_expert.yaml OUTPUT_DIR work/expert
    python tools/train_net.py --config-file CFG --resume OUTPUT_DIR work/expert   # continue a run
    python tools/train_net.py --eval-only MODEL.WEIGHTS work/fd3d/model \\
        DATASETS.DATAROOT /data/nuscenes DATASETS.VERSION v1.0-trainval DATASETS.TEST_SPLIT val

Several --config-file are overlays merged in order (a detector pair, then a distillation method). Which
job runs is in the config: `DISTILL.LOSSES` non-empty distils, otherwise the detector of
`MODEL.META_ARCHITECTURE` trains alone. Every evaluation writes OUTPUT_DIR/metrics.json (NDS, mAP,
mATE...mAAE, per-class AP); the trained model lands in OUTPUT_DIR/model as a Hub-ready folder. Works
as plain `python` (one process) and under `accelerate launch` (DDP/FSDP, mixed precision and gradient
accumulation from `accelerate config` or the SOLVER keys).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fd3d.config.cli import add_config_arguments, config_from_args
from fd3d.engine.trainer import MODEL_DIR, evaluate_only, train
from fd3d.hub import HubError, push_to_hub


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_arguments(parser, required=False)  # required unless --eval-only
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR's last checkpoint")
    parser.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS on DATASETS.*")
    parser.add_argument(
        "--push-to-hub", metavar="ORG/NAME", help="upload OUTPUT_DIR/model when training ends"
    )
    parser.add_argument("--hub-private", action="store_true", help="create the Hub repository as private")
    args = parser.parse_args(argv)
    if not args.config_file and not args.eval_only:
        parser.error("--config-file is required to train")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = config_from_args(args)
    if args.eval_only:
        evaluate_only(cfg)
        return 0
    train(cfg, resume=args.resume)
    if args.push_to_hub:
        from accelerate import PartialState

        if PartialState().is_main_process:
            try:
                url = push_to_hub(
                    Path(cfg.OUTPUT_DIR) / MODEL_DIR, args.push_to_hub, private=args.hub_private
                )
            except HubError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            print(f"pushed {cfg.OUTPUT_DIR}/{MODEL_DIR} to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
