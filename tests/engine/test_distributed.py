"""Two CPU processes (gloo) through `accelerate launch`: identical weights after every step, disjoint data;
evaluation predicts every sample once, as one process does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fd3d.config import load_config
from fd3d.engine.trainer import evaluate_only
from fd3d.hub import save_pretrained
from fd3d.modeling import build_model

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = ROOT / "projects"  # detector configs: <Name>/configs/


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


@pytest.mark.parametrize(
    ("project", "protocol"), [("DETR3D", "queue"), ("BEVFormer", "scene")], ids=["batches", "scenes"]
)
def test_two_processes_predict_every_sample_once_as_one_process_does(
    mini_dataroot, tmp_path, project, protocol
):
    """`--eval-only` on two processes (6 samples in batches of 4: the last batch is evened out with
    repeats; or whole scenes per process) writes the one-process results file, each sample once."""
    config = PROJECTS / project / "configs" / "cpu_apprentice.yaml"
    torch.manual_seed(0)
    save_pretrained(build_model(load_config(config)), load_config(config), tmp_path / "model")
    data = [
        "DATASETS.DATAROOT", str(mini_dataroot), "DATASETS.VERSION", "v1.0-mini", "DATASETS.TEST_SPLIT",
        "mini_val", "MODEL.WEIGHTS", str(tmp_path / "model"), "TEST.IMS_PER_BATCH", "4",
        "TEST.TEMPORAL_PROTOCOL", protocol,
    ]  # fmt: skip
    evaluate_only(load_config(config, [*data, "OUTPUT_DIR", str(tmp_path / "one")]))
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), str(ROOT / "tools" / "train_net.py"), "--eval-only",
        "--config-file", str(config), *data, "OUTPUT_DIR", str(tmp_path / "two"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = (json.loads((tmp_path / n / "eval" / "results_nusc.json").read_text()) for n in ("one", "two"))
    assert sorted(two["results"]) == sorted(one["results"]) and len(one["results"]) == 6
    for token, boxes in one["results"].items():
        scores = [box["detection_score"] for box in boxes]
        assert [box["detection_score"] for box in two["results"][token]] == pytest.approx(scores, abs=1e-5)
