"""Launched by test_distributed.py under `accelerate launch`: trains a few steps with the trainer's own
setup and step functions and records, per rank, the samples each step read and the weights after it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from fd3d.config import load_config
from fd3d.engine.trainer import batches, prepare_training, training_step


def main() -> None:
    config_file, out_dir, *overrides = sys.argv[1:]
    cfg = load_config(config_file, overrides)
    run = prepare_training(cfg)
    stream = batches(run, cfg)
    steps = []
    while run.step < cfg.SOLVER.MAX_ITER:
        batch = next(stream)
        training_step(run, batch, cfg)
        weights = torch.cat(
            [p.detach().flatten() for p in run.accelerator.unwrap_model(run.model).parameters()]
        )
        steps.append({"tokens": list(batch["sample_token"]), "weights": weights.double().sum().item(),
                      "head": weights[-8:].tolist()})  # fmt: skip
    state = run.accelerator.state
    record = {"rank": state.process_index, "world": state.num_processes, "type": str(state.distributed_type)}
    Path(out_dir, f"rank{state.process_index}.json").write_text(json.dumps({**record, "steps": steps}))


if __name__ == "__main__":
    main()
