"""tools/demo.py end to end at toy scale (2 live steps per apprentice, 2 train + 1 val scenes x 3 keyframes)
with the zoo: the table is the devkit's metrics of each model, zoo and live rows are labelled, every
figure is written, a re-run reuses."""

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


def test_demo_scores_the_zoo_runs_the_live_workflow_and_draws(tmp_path, capsys):
    out = tmp_path / "demo"
    rows = main(["--out", str(out), *TOY])
    printed = capsys.readouterr().out
    zoo = [row for row in rows if row["kind"].startswith("zoo")]
    live = [row for row in rows if row["kind"].startswith("live")]
    assert [row["model"] for row in zoo] == list(MODELS) and [row["model"] for row in live] == list(
        MODELS[1:]
    )
    files = {
        "expert": out / "zoo" / "expert",
        "apprentice": out / "zoo" / "apprentice",
        "fd3d": out / "zoo" / "fd3d",
    }
    for row in zoo:
        scored = json.loads((files[row["model"]] / "metrics.json").read_text())
        assert {key: row[key] for key in METRIC_KEYS} == {key: scored[key] for key in METRIC_KEYS}
    for row in live:
        scored = json.loads((out / "live" / row["model"] / "metrics.json").read_text())
        assert {key: row[key] for key in METRIC_KEYS} == {key: scored[key] for key in METRIC_KEYS}
    assert zoo[0]["NDS"] > 0.25  # the zoo expert detects on data of a seed it never saw
    assert (
        zoo[0]["gflops"] > 5 * zoo[1]["gflops"] and zoo[1]["gflops"] == zoo[2]["gflops"] == live[0]["gflops"]
    )
    assert "evaluator check, ground truth as predictions: NDS 1.0000" in printed
    assert "[zoo] expert: projects/BEVFormer/zoo/cpu_expert" in printed
    assert "zoo models (" in printed and "live run (2 steps" in printed
    assert sorted(path.name for path in (out / "figures").iterdir()) == FIGURES
    for name in FIGURES:
        assert str(out / "figures" / name) in printed
        with Image.open(out / "figures" / name) as image:
            assert image.format == "PNG" and min(image.size) >= 300, (name, image.size)
    saved = json.loads((out / "demo_results.json").read_text())
    assert saved["rows"] == rows and saved["seconds"]["total"] > 0 and saved["threads"] == 2

    again = main(["--out", str(out), *TOY])
    printed = capsys.readouterr().out
    assert printed.count("reusing") == 6  # data, three zoo evaluations, both live apprentices
    assert [row["NDS"] for row in again] == [row["NDS"] for row in rows]
