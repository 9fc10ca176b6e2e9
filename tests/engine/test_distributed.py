"""Two CPU processes (gloo) through `accelerate launch`: identical weights after every step, disjoint data."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_hold_identical_weights_and_read_disjoint_samples(mini_dataroot, tmp_path):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(Path(__file__).with_name("ddp_probe.py")),
        str(PROJECTS / "DETR3D" / "configs" / "cpu_apprentice.yaml"), str(tmp_path),
        "DATASETS.DATAROOT", str(mini_dataroot), "DATASETS.VERSION", "v1.0-mini",
        "DATASETS.TRAIN_SPLIT", "mini_train", "OUTPUT_DIR", str(tmp_path / "out"),
        "SOLVER.MAX_ITER", "3", "SOLVER.WARMUP_ITERS", "1", "SOLVER.BASE_LR", "1e-3",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2] and "MULTI_CPU" in ranks[0]["type"]
    for step0, step1 in zip(ranks[0]["steps"], ranks[1]["steps"], strict=True):
        assert step0["weights"] == step1["weights"] and step0["head"] == step1["head"]
        assert not set(step0["tokens"]) & set(step1["tokens"])
    seen = [t for r in ranks for s in r["steps"] for t in s["tokens"]]
    assert len(seen) == len(set(seen)) == 6  # mini_train's 6 samples, each read once in the epoch
    assert ranks[0]["steps"][0]["weights"] != ranks[0]["steps"][-1]["weights"]  # training moved them
