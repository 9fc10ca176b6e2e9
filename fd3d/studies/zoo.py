"""The distillation study's seed-0 runs as model-zoo entries: shipped from the study (`--ship-zoo`), and
adopted back as its seed-0 runs after scoring them again on regenerated data (`--adopt-zoo`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from huggingface_hub import ModelCard

from fd3d.atomic import write_json_atomically, write_text_atomically
from fd3d.config import load_config
from fd3d.engine.trainer import evaluate_only
from fd3d.hub import WEIGHTS_NAME, from_pretrained, load_pretrained_config, save_pretrained
from fd3d.integrity import sha256_of
from fd3d.studies.jobs import finished_run
from fd3d.studies.ledger import ledger_entry
from fd3d.studies.protocols import ROOT, STUDY_DATA, STUDY_EXPERT, STUDY_METHODS

# how far a re-scored zoo model may be from its card: the same weights on regenerated study data differ by
# up to 5e-4 (the expert: mAP 0.4051 against 0.4053, the apprentice's mAOE by 5e-4); data of another seed
# moves NDS and mAP by 1e-2 or more
ADOPT_TOLERANCE = 1e-3
# the study's seed-0 runs shipped as zoo entries: {method run: zoo folder name}
ZOO_ENTRIES = {"apprentice": "cpu_apprentice_bev50", "fd3d@calibrated": "cpu_apprentice_bev50_fd3d"}


def check_zoo_schedule(steps: int) -> None:
    """Raise SystemExit unless every ZOO_ENTRIES model trained for `steps` steps (its saved config's
    SOLVER.MAX_ITER): a model of another schedule is not that study's seed 0."""
    for folder_name in ZOO_ENTRIES.values():
        zoo = STUDY_EXPERT.parent / folder_name
        trained = int(load_pretrained_config(zoo)[0].SOLVER.MAX_ITER)
        if trained != steps:
            raise SystemExit(f"--adopt-zoo: {zoo} trained for {trained} steps (config SOLVER.MAX_ITER), "
                             f"this study runs {steps} (--steps): it is not this study's seed 0")  # fmt: skip


def adopt_zoo(out: Path, results: Path, data: list[str], steps: int) -> None:
    """Record each ZOO_ENTRIES model as its run's seed 0 of the `steps`-step study: the model must have
    trained for `steps` steps, and scored again on OUT's val split it must give its card's metrics within
    ADOPT_TOLERANCE, or the regenerated data is not the study's. The ledger entry keeps the curve points it
    already holds (they come from the run that trained the model)."""
    check_zoo_schedule(steps)
    for run_name, folder_name in ZOO_ENTRIES.items():
        zoo = STUDY_EXPERT.parent / folder_name
        cfg = load_config(
            STUDY_METHODS["apprentice"].config,
            [*data, "MODEL.WEIGHTS", str(zoo), "OUTPUT_DIR", str(out / "adopted" / run_name)],
        )
        metrics = evaluate_only(cfg)
        card = {
            result.metric_name: result.metric_value
            for result in ModelCard.load(zoo / "README.md").data.eval_results
        }
        if any(not math.isclose(metrics[key], value, abs_tol=ADOPT_TOLERANCE) for key, value in card.items()):
            raise SystemExit(f"--adopt-zoo: {zoo} scores {metrics} on {out / 'data'}, its card says {card}: "
                             "the regenerated data is not the data the zoo model was scored on")  # fmt: skip
        target = ledger_entry(results, run_name, 0)
        known = json.loads(target.read_text()) if target.is_file() else {}
        curve = [point for point in known.get("curve", []) if point["step"] < steps]
        curve.append({"step": steps, "NDS": metrics["NDS"], "mAP": metrics["mAP"]})
        entry = {
            **known,
            "seed": 0,
            "metrics": metrics,
            "curve": curve,
            "weights": str(zoo.relative_to(ROOT)),
            "weights_sha256": sha256_of(zoo / WEIGHTS_NAME),
        }
        write_json_atomically(target, entry)
        print(f"[adopt] {run_name} seed 0 <- {zoo}: NDS {metrics['NDS']:.4f} mAP {metrics['mAP']:.4f}")


def ship_to_zoo(out: Path, results: Path, plan: Mapping, zoo: Path) -> list[Path]:
    """Write each ZOO_ENTRIES run of seed 0 as a Hub-format folder in `zoo`: its config and weights, a card
    naming the command, the data, the steps, the val metrics (synthetic data, not nuScenes) and the
    weights' sha256."""
    written = []
    for run_name, folder_name in ZOO_ENTRIES.items():
        run = finished_run(out / "runs" / run_name / "seed0")
        if run is None:
            raise SystemExit(f"--ship-zoo: {out / 'runs' / run_name / 'seed0'} is not finished")
        cfg, folder = load_pretrained_config(run["weights"])
        model = from_pretrained(folder)
        method = run_name.split("@")[0]
        command = (f"python tools/distillation_study.py --out {out} --seeds 0 --methods {method} "
                   f"--steps {plan['steps']}")  # fmt: skip
        notes = [
            f"Trained by `{command}` (then `--ship-zoo`): seed 0, {plan['steps']} steps from scratch, AdamW "
            f"lr {cfg.SOLVER.BASE_LR:g}, cosine to zero, batch 1, on the study's synthetic data "
            f"(SyntheticConfig(version='{plan['version']}', scenes={plan['scenes']}, val_scenes="
            f"{plan['val_scenes']}, samples_per_scene={plan['samples']}, seed=1000))",
        ]
        samples = plan["val_scenes"] * plan["samples"]
        val = f"{plan['val_scenes']} scene layouts it never trained on, {samples} samples"
        notes.append(f"Metrics: the study's val split ({val})")
        if method != "apprentice":
            scales = json.loads((results / "calibration" / f"{method}.json").read_text())["stage_scales"]
            shown = ", ".join(f"{stage.upper()} {scale:.3g}" for stage, scale in sorted(scales.items()))
            notes.append(f"Distilled from `{plan['expert']}` with {method}, stage-calibrated weights "
                         f"(DISTILL.STAGE_SCALE {shown}: each stage's terms at half the detection "
                         "gradient)")  # fmt: skip
        target = zoo / folder_name
        save_pretrained(model, cfg, target, metrics=run["metrics"], eval_dataset=STUDY_DATA, notes=notes,
                        method=method if method != "apprentice" else None,
                        distilled_from=plan["expert"] if method != "apprentice" else None)  # fmt: skip
        digest = sha256_of(target / WEIGHTS_NAME)
        card = (target / "README.md").read_text()
        files = f"\n## Files\n\n| file | sha256 |\n|---|---|\n| `{WEIGHTS_NAME}` | `{digest}` |\n"
        write_text_atomically(target / "README.md", card.rstrip() + "\n" + files)
        written.append(target)
        print(f"[zoo] {target}: NDS {run['metrics']['NDS']:.4f} mAP {run['metrics']['mAP']:.4f}")
    return written
