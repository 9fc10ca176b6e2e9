"""tools/demo.py end to end at toy scale (4 steps per apprentice, 3 scenes x 3 keyframes) with the
shipped expert: the table is the devkit's metrics of each job, every figure is written, a re-run reuses."""

from __future__ import annotations

import json

from PIL import Image

from fd3d.evaluation.nuscenes_eval import METRIC_KEYS
from tools.demo import main

TOY = ["--steps", "2", "--train-scenes", "2", "--val-scenes", "1", "--samples-per-scene", "3"]
MODELS = ("expert", "apprentice", "fd3d")
FIGURES = sorted(
    ["bev_activation.png", "boxes_bev.png", "metrics.png"]
    + [f"{kind}_{name}.png" for kind in ("boxes_cameras", "pv_activation") for name in MODELS]
)


def test_demo_scores_the_shipped_expert_trains_both_apprentices_and_draws(tmp_path, capsys):
    out = tmp_path / "demo"
    rows = main(["--out", str(out), *TOY])
    printed = capsys.readouterr().out
    assert tuple(row["model"] for row in rows) == MODELS
    metrics_files = {"expert": out / "expert", "apprentice": out / "apprentice", "fd3d": out / "fd3d"}
    for row in rows:
        scored = json.loads((metrics_files[row["model"]] / "metrics.json").read_text())
        assert {key: row[key] for key in METRIC_KEYS} == {key: scored[key] for key in METRIC_KEYS}
    assert rows[0]["NDS"] > 0.25  # the shipped expert detects on data of a seed it never saw
    assert rows[0]["gflops"] > 5 * rows[1]["gflops"] and rows[1]["gflops"] == rows[2]["gflops"]
    assert "evaluator check, ground truth as predictions: NDS 1.0000" in printed
    assert "[expert] projects/BEVFormer/zoo/cpu_expert" in printed
    assert sorted(path.name for path in (out / "figures").iterdir()) == FIGURES
    for name in FIGURES:
        assert str(out / "figures" / name) in printed
        with Image.open(out / "figures" / name) as image:
            assert image.format == "PNG" and min(image.size) >= 300, (name, image.size)
    saved = json.loads((out / "demo_results.json").read_text())
    assert saved["rows"] == rows and saved["seconds"]["total"] > 0

    again = main(["--out", str(out), *TOY])
    printed = capsys.readouterr().out
    assert printed.count("reusing") == 4  # data, the expert's evaluation, both trained apprentices
    assert [row["NDS"] for row in again] == [row["NDS"] for row in rows]
