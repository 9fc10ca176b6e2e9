#!/usr/bin/env python
"""Does distillation pay once the apprentice detects? The paper's protocol (Tables 2-3) on a CPU pair.

    python tools/distillation_study.py --out work/study --seeds 0 1 2 --methods apprentice fd3d
    python tools/distillation_study.py --out work/study --report

The pair is `configs/distill/pairs/bevformer_cpu_bev50.yaml`: the shipped expert
(projects/BEVFormer/zoo/cpu_expert, trained on this study's data) and an apprentice with half its image
size, half its encoder layers, a lighter backbone and a BEV grid of the same 2.05 m cells. Every method
trains from the same initialisation for the whole schedule with distillation throughout (the paper's
protocol), under two weightings:
- `paper`: the method's config weights as shipped;
- `calibrated`: `DISTILL.STAGE_SCALE` set so that at each stage (PV, BEV) the method's terms carry
  FRACTION of the detection loss's gradient there, measured on train batches over the first
  CALIBRATION_STEPS steps of a from-scratch run (OUT/calibration/<method>.json; nothing is tuned on val).

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
import json
import math
import statistics
import sys
from pathlib import Path

import torch
from accelerate.utils import set_seed
from huggingface_hub import ModelCard
from matplotlib.figure import Figure

from fd3d.atomic import write_json_atomically, write_text_atomically
from fd3d.config import distill_config, load_config
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.distill.similarity import feature_similarity
from fd3d.engine.diagnose import train_and_measure
from fd3d.engine.trainer import evaluate_only, prepare_training
from fd3d.evaluation.calibration import scale_overrides, stage_gradient_norms, stage_scales
from fd3d.evaluation.reproduction import (
    gains_over_apprentice,
    markdown_table,
    paired_comparisons,
    paired_figure,
    paired_table,
    save_figure,
    summarize,
    weighting_rows,
)
from fd3d.hub import WEIGHTS_NAME, from_pretrained, load_pretrained_config, save_pretrained
from fd3d.integrity import sha256_of
from fd3d.modeling.registry import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.reproduce import FULL, RUN_INFO, data_overrides, finished_run, make_data, run_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAIR = "bevformer_cpu_bev50"
APPRENTICE = [ROOT / "projects" / "BEVFormer" / "configs" / "cpu_apprentice_bev50.yaml"]
EXPERT = ROOT / "projects" / "BEVFormer" / "zoo" / "cpu_expert"
RESULTS = ROOT / "benchmarks" / "results" / "distillation_study"
STUDY_DATA = "synthetic nuScenes-format data (fd3d generator, seed 1000), not nuScenes"
# run order: the claim (FD3D vs the apprentice) first, then the baselines, strongest measured first
METHODS = {
    "apprentice": APPRENTICE,
    "fd3d": distill_config(PAIR, "fd3d"),
    "fitnet": distill_config(PAIR, "fitnet"),
    "mgd": distill_config(PAIR, "mgd"),
    "cwd": distill_config(PAIR, "cwd"),
    "heatmap": distill_config(PAIR, "heatmap"),
}
WEIGHTINGS = ("calibrated", "paper")
# FD3D's focal queries come from its distillation head, which depends only on the expert: trained first
# on the frozen expert for these steps, so SMGD and QFD have focal queries from the apprentice's step 1.
HEAD_PRETRAIN = {"fd3d": 1000}
STUDY = {"steps": 4000, "eval_period": 1000, "calibration_steps": 200, "measure_every": 10, "fraction": 0.5}


def head_overrides(method: str) -> list[str]:
    steps = HEAD_PRETRAIN.get(method)
    return ["DISTILL.HEAD.PRETRAIN_ITERS", str(steps)] if steps else []


def calibrate(method: str, out: Path, results: Path, base: list[str], plan: dict) -> dict:
    """The method's stage scales (stored in RESULTS/calibration/<method>.json and reused): its gradient norms
    per stage over the first `calibration_steps` train steps of a from-scratch run at the paper's weights
    (seed 0), and the scales that bring each stage to `fraction` of the detection gradient there."""
    target = results / "calibration" / f"{method}.json"
    if target.is_file():
        return json.loads(target.read_text())
    scratch = out / "calibration" / "scratch" / method
    cfg = load_config(
        METHODS[method], [*base, *head_overrides(method), "SEED", "0", "OUTPUT_DIR", str(scratch)]
    )
    print(f"[calibrate] {method}: {plan['calibration_steps']} steps from scratch", flush=True)
    run = prepare_training(cfg)
    distiller = run.accelerator.unwrap_model(run.model)
    term_stages = {
        term.removeprefix("loss_kd_"): stage
        for module in distiller.kd_modules.values()
        for term, stage in module.term_stages().items()
    }
    norms, _ = train_and_measure(run, cfg, plan["calibration_steps"], plan["measure_every"])
    per_stage = stage_gradient_norms(norms, term_stages)
    scales = stage_scales(per_stage, plan["fraction"])
    result = {"grad_norms": norms, "stage_norms": per_stage, "stage_scales": scales,
              "fraction": plan["fraction"], "steps": plan["calibration_steps"]}  # fmt: skip
    write_json_atomically(target, result)
    return result


def expert_run(out: Path, data: list[str]) -> dict:
    """The zoo expert scored on the study's val split (OUT/expert/run_info.json, reused)."""
    folder = out / "expert"
    info_file = folder / "run_info.json"
    if info_file.is_file():
        return json.loads(info_file.read_text())
    cfg = load_config(METHODS["apprentice"], [*data, "MODEL.WEIGHTS", str(EXPERT), "OUTPUT_DIR", str(folder)])
    metrics = evaluate_only(cfg)
    info = {"seed": 0, "metrics": metrics, "weights": str(EXPERT)}
    write_json_atomically(info_file, info)
    return info


def learning_curve(run_folder: Path, steps: int) -> list[dict]:
    """[{"step", "NDS", "mAP"}] of a run's periodic evaluations (OUTPUT_DIR/eval_<step>/) and final one."""
    curve = []
    for folder in sorted(run_folder.glob("eval_0*")):
        metrics = json.loads((folder / "metrics.json").read_text())
        curve.append(
            {"step": int(folder.name.removeprefix("eval_")), "NDS": metrics["NDS"], "mAP": metrics["mAP"]}
        )
    final = run_folder / "eval_final" / "metrics.json"
    if final.is_file():
        metrics = json.loads(final.read_text())
        curve.append({"step": steps, "NDS": metrics["NDS"], "mAP": metrics["mAP"]})
    return curve


def curves_figure(curves: dict[str, list[list[dict]]]) -> Figure:
    """NDS and mAP against step, every method on one figure: the mean over seeds, each seed faint."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    axes = figure.subplots(1, 2)
    for color_index, (name, runs) in enumerate(sorted(curves.items())):
        color = f"C{color_index}"
        for axis, key in zip(axes, ("NDS", "mAP"), strict=True):
            for curve in runs:
                axis.plot([p["step"] for p in curve], [p[key] for p in curve], color=color, alpha=0.25, lw=1)
            steps = sorted({p["step"] for curve in runs for p in curve})
            means = [statistics.fmean(p[key] for c in runs for p in c if p["step"] == s) for s in steps]
            axis.plot(steps, means, color=color, lw=2, marker="o", ms=3, label=f"{name} ({len(runs)} seeds)")
            axis.set_xlabel("step")
            axis.set_ylabel(f"{key} (val)")
            axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.suptitle("Learning curves: mean over seeds (bold), each seed (faint)")
    return figure


def write_report(
    results: Path, runs: dict[str, list[dict]], curves: dict, plan: dict, similarity: dict | None = None
) -> dict:
    """OUT/results.{md,json}: per weighting a Table-2-style table, gains and gap closed, paired intervals;
    OUT/results.png the paired differences, OUT/curves.png the learning curves."""
    summaries = {name: summarize(group) for name, group in runs.items()}
    lines = [
        f"# Distillation study ({PAIR}): {plan['steps']} steps from scratch, distillation throughout",
        "",
    ]
    gains, paired, panels = {}, {}, {}
    for weighting in WEIGHTINGS:
        rows = weighting_rows(summaries, weighting)
        if len(rows) <= 2:
            continue
        lines += [f"## {weighting} weights", "", markdown_table(rows, {}, ["expert", *METHODS])]
        found_gains = gains_over_apprentice(rows, weighting)
        gains.update(found_gains)
        if found_gains:
            lines += ["", "| method | ΔNDS | gap closed | ΔmAP |", "|---|---|---|---|"]
            for name, gain in found_gains.items():
                gap = "" if gain["gap_closed"] is None else f"{100 * gain['gap_closed']:.0f} %"
                lines.append(f"| {name} | {gain['NDS_gain']:+.4f} | {gap} | {gain['mAP_gain']:+.4f} |")
            lines.append("")
        comparisons = [(name, "apprentice") for name in METHODS if name != "apprentice"]
        comparisons += [("fd3d", name) for name in METHODS if name not in ("apprentice", "fd3d")]
        found = paired_comparisons(rows, comparisons)
        lines += [f"### Paired by seed, NDS ({weighting} weights)", "", paired_table(found), ""]
        paired.update({f"{name}@{weighting} vs {baseline}": d for (name, baseline), d in found.items()})
        panels[f"{weighting} weights"] = found
    calibration = {
        p.stem: json.loads(p.read_text()) for p in sorted((results / "calibration").glob("*.json"))
    }
    if calibration:
        lines += [
            "## Calibration (gradient norms at the apprentice's features, from scratch, train data)",
            "",
        ]
        lines += ["| method | stage | distillation | detection | scale |", "|---|---|---|---|---|"]
        for method, found in calibration.items():
            for stage, norms in found["stage_norms"].items():
                lines.append(f"| {method} | {stage} | {norms['distillation']:.4g} | {norms['detection']:.4g} "
                             f"| {found['stage_scales'][stage]:.4g} |")  # fmt: skip
    if similarity:
        stages = sorted({stage for found in similarity.values() for stage in found})
        title = f"## Features toward the expert's? Linear CKA with it ({SIMILARITY_SAMPLES} val samples)"
        header = ["| model | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
        lines += ["", title, "", *header]
        lines += [f"| {key} | " + " | ".join(f"{found.get(s, float('nan')):.3f}" for s in stages) + " |"
                  for key, found in similarity.items()]  # fmt: skip
    content = {"plan": plan, "gains": gains, "paired": paired, "calibration": calibration,
               "curves": curves, "similarity": similarity or {}, **summaries}  # fmt: skip
    write_json_atomically(results / "results.json", content)
    write_text_atomically(results / "results.md", "\n".join(lines) + "\n")
    if drawn := {title: found for title, found in panels.items() if found}:
        save_figure(paired_figure(drawn), results / "results.png")
    if curves:
        save_figure(curves_figure(curves), results / "curves.png")
    return content


def ledger_entry(results: Path, name: str, seed: int) -> Path:
    return results / "runs" / name / f"seed{seed}.json"


def record_finished_runs(out: Path, results: Path, plan: dict) -> None:
    """Write (or refresh) the ledger entry of every finished run under OUT/runs: seed, metrics, learning
    curve, wall time and the weights' sha256."""
    for folder in sorted((out / "runs").glob("*/seed*")):
        if (done := finished_run(folder)) is None:
            continue
        target = ledger_entry(results, folder.parent.name, done["seed"])
        digest = sha256_of(Path(done["weights"]) / WEIGHTS_NAME)
        known = json.loads(target.read_text()) if target.is_file() else {}
        entry = {
            "seed": done["seed"],
            "metrics": done["metrics"],
            "curve": learning_curve(folder, plan["steps"]),
            "weights": done["weights"],
            "weights_sha256": digest,
            "seconds_last_sitting": done.get("seconds_this_sitting"),
        }
        if entry != known:
            write_json_atomically(target, entry)


def collect(results: Path) -> tuple[dict[str, list[dict]], dict[str, list[list[dict]]]]:
    """Every run in the ledger and its learning curve."""
    runs: dict[str, list[dict]] = {}
    curves: dict[str, list[list[dict]]] = {}
    for entry_file in sorted((results / "runs").glob("*/seed*.json")):
        entry = json.loads(entry_file.read_text())
        runs.setdefault(entry_file.parent.name, []).append(entry)
        curves.setdefault(entry_file.parent.name, []).append(entry["curve"])
    return runs, curves


def adopt_zoo(out: Path, results: Path, data: list[str]) -> None:
    """Record each ZOO_ENTRIES model as its run's seed 0: scored again on OUT's val split, which must give
    its card's metrics within ADOPT_TOLERANCE, or the regenerated data is not the study's. The ledger entry
    keeps the curve points it already holds (they come from the run that trained the model)."""
    for run_name, folder_name in ZOO_ENTRIES.items():
        zoo = EXPERT.parent / folder_name
        cfg = load_config(
            METHODS["apprentice"],
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
        steps = STUDY["steps"]
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


# how far a re-scored zoo model may be from its card: the same weights on regenerated study data differ by
# up to 5e-4 (the expert: mAP 0.4051 against 0.4053, the apprentice's mAOE by 5e-4); data of another seed
# moves NDS and mAP by 1e-2 or more
ADOPT_TOLERANCE = 1e-3
# the study's seed-0 runs shipped as zoo entries: {method run: zoo folder name}
ZOO_ENTRIES = {"apprentice": "cpu_apprentice_bev50", "fd3d@calibrated": "cpu_apprentice_bev50_fd3d"}


def ship_to_zoo(out: Path, results: Path, plan: dict, zoo: Path) -> list[Path]:
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="work/study", help="study folder (default %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default 0 1 2")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--weightings", nargs="+", choices=WEIGHTINGS, default=["calibrated"])
    parser.add_argument(
        "--steps", type=int, default=STUDY["steps"], help="steps of every run (default %(default)s)"
    )
    parser.add_argument(
        "--eval-period",
        type=int,
        default=STUDY["eval_period"],
        help="steps between val evaluations (default %(default)s)",
    )
    parser.add_argument(
        "--calibration-steps", type=int, default=STUDY["calibration_steps"], help="default %(default)s"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    parser.add_argument(
        "--results",
        default=str(RESULTS.relative_to(ROOT)),
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
    plan = {**FULL, **STUDY, "steps": args.steps, "eval_period": args.eval_period, "pair": PAIR,
            "calibration_steps": args.calibration_steps, "expert": str(EXPERT.relative_to(ROOT))}  # fmt: skip
    dataroot = out / "data"
    data = data_overrides(dataroot, plan["version"])
    if args.ship_zoo:
        ship_to_zoo(out, results, plan, EXPERT.parent)
        return {}
    if args.adopt_zoo:
        adopt_zoo(out, results, data)
    if not args.report and not args.adopt_zoo:
        make_data(dataroot, plan, seed=1000)
        expert_run(out, data)
        schedule = ["SOLVER.MAX_ITER", str(args.steps), "SOLVER.CHECKPOINT_PERIOD", str(plan["eval_period"]),
                    "TEST.EVAL_PERIOD", str(plan["eval_period"])]  # fmt: skip
        distill = [
            "DISTILL.EXPERT.WEIGHTS",
            str(EXPERT),
            "DISTILL.EXPERT.FEATURE_CACHE",
            str(out / "expert_cache"),
        ]
        for seed in args.seeds:
            for method in args.methods:
                for weighting in ["paper"] if method == "apprentice" else args.weightings:
                    name = method if method == "apprentice" else f"{method}@{weighting}"
                    overrides = [*data, *schedule, "SEED", str(seed)]
                    if method != "apprentice":
                        overrides += [*distill, *head_overrides(method)]
                        if weighting == "calibrated":
                            found = calibrate(method, out, results, [*data, *distill], plan)
                            overrides += scale_overrides(found["stage_scales"])
                    run_job(name, METHODS[method], out / "runs" / name / f"seed{seed}", overrides)
                    report(out, results, plan)
    found = report(out, results, plan)
    print((results / "results.md").read_text())
    return found


def report(out: Path, results: Path, plan: dict) -> dict:
    """write_report over the expert and every run in the ledger, with their features' similarity."""
    record_finished_runs(out, results, plan)
    if (out / "expert" / RUN_INFO).is_file():
        write_json_atomically(results / "expert.json", json.loads((out / "expert" / RUN_INFO).read_text()))
    if not (results / "expert.json").is_file():
        raise SystemExit(f"--report: the expert is not scored yet ({results / 'expert.json'}); "
                         "run without --report first")  # fmt: skip
    runs, curves = collect(results)
    similarity = similarities(out, results, runs)
    expert = [json.loads((results / "expert.json").read_text())]
    return write_report(results, {"expert": expert, **runs}, curves, plan, similarity)


SIMILARITY_SAMPLES = 40  # the first val samples (cells and image positions of each are the CKA's items)


def similarities(out: Path, results: Path, runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """{"<run>@seed<k>": {stage: CKA with the expert}} for every run whose weights are here and for the
    apprentice at its initialisation (seed 0, "untrained"), cached in RESULTS/similarity/ with the
    weights' sha256 (a cached value of other weights is measured again)."""
    models = {"untrained@seed0": (None, lambda: _initial_apprentice(0))}
    for name, group in runs.items():
        for run in group:
            weights = ROOT / run["weights"]
            # None: the weights lived in a lost work folder; only a CKA measured before can be reported
            load = (lambda weights=weights: from_pretrained(str(weights))) if weights.exists() else None
            models[f"{name}@seed{run['seed']}"] = (run["weights_sha256"], load)
    found, expert, dataset = {}, None, None
    for key, (digest, load) in models.items():
        cached = results / "similarity" / f"{key}.json"
        known = json.loads(cached.read_text()) if cached.is_file() else {}
        if known.get("weights_sha256") != digest or "cka" not in known:
            if load is None:
                continue
            if expert is None:  # loaded only when something is measured
                expert = from_pretrained(str(EXPERT))
                dataset = NuScenesDataset(out / "data", FULL["version"], "val", expert.image_size,
                                          expert.pc_range.tolist(),
                                          queue_length=expert.queue_length)  # fmt: skip
            batches = (collate_samples([dataset[i]]) for i in range(min(SIMILARITY_SAMPLES, len(dataset))))
            known = {"weights_sha256": digest, "cka": feature_similarity(load(), expert, batches)}
            write_json_atomically(cached, known)
        found[key] = known["cka"]
    return found


def _initial_apprentice(seed: int) -> torch.nn.Module:
    set_seed(seed)
    return build_model(load_config(APPRENTICE, ["SEED", str(seed)]))


if __name__ == "__main__":
    main()
