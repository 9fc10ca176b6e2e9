"""A study's reports: Table-2-style markdown, paired comparisons, and the results.{md,json,png} files of the
paper protocol, the warm protocol and the distillation study.

Every number in a report comes from `fd3d.studies.aggregate`; these functions only lay it out, so a
report can be written again from the runs (`--report`) and read the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from fd3d.atomic import write_json_atomically, write_text_atomically
from fd3d.evaluation.nuscenes_eval import METRIC_KEYS
from fd3d.studies.aggregate import (
    gain_and_gap,
    gains_over_apprentice,
    paired_comparisons,
    summarize,
    verdict,
    weighting_rows,
)
from fd3d.studies.figures import bar_plot, curves_figure, paired_figure, save_figure
from fd3d.studies.protocols import (
    BALANCED_AS_CALIBRATED,
    SIMILARITY_SAMPLES,
    STUDY_METHODS,
    STUDY_PAIR,
    STUDY_WEIGHTINGS,
    WARM_METHODS,
    WARM_PAIRED_COMPARISONS,
    WARM_WEIGHTINGS,
)


def paired_table(comparisons: Mapping[tuple[str, str], Mapping]) -> str:
    """Markdown rows "A vs B" of `paired_comparisons`: paired seeds, mean ± std of the per-seed NDS
    difference, 95 % interval and verdict."""
    lines = ["| comparison | paired seeds | ΔNDS per seed | mean ± std | 95 % interval | verdict |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for (name, baseline), paired in comparisons.items():
        per_seed = ", ".join(f"{d:+.4f}" for d in paired["differences"])
        interval = "" if paired["low"] is None else f"[{paired['low']:+.4f}, {paired['high']:+.4f}]"
        lines.append(
            f"| {name} vs {baseline} | {len(paired['seeds'])} | {per_seed} | "
            f"{paired['mean']:+.4f} ± {paired['std']:.4f} | {interval} | {verdict(paired)} |"
        )
    return "\n".join(lines) + "\n"


def markdown_table(results: Mapping[str, Mapping], costs: Mapping[str, Mapping], order: Sequence[str]) -> str:
    """Table-2-style markdown: metrics (mean ± std), GFLOPs, frames/s, gain and gap closed."""
    header = ["method", "seeds", *METRIC_KEYS, "GFLOPs", "fps", "ΔNDS", "gap closed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    apprentice, expert = results.get("apprentice"), results.get("expert")
    for name in order:
        if name not in results:
            continue
        summary = results[name]
        cells = [name, str(len(summary["seeds"]))]
        for key in METRIC_KEYS:
            mean, std = summary[f"{key}_mean"], summary[f"{key}_std"]
            cells.append(f"{mean:.4f} ± {std:.4f}" if len(summary["seeds"]) > 1 else f"{mean:.4f}")
        cost = costs.get("expert" if name == "expert" else "apprentice", {})
        cells += [f"{cost['gflops']:.2f}" if cost else "", f"{cost['fps']:.1f}" if cost else ""]
        if name in ("expert", "apprentice") or apprentice is None or expert is None:
            cells += ["", ""]
        else:
            gain, gap, real = gain_and_gap(summary, apprentice, expert)
            cells += [
                f"{gain:+.4f}" + ("" if real else " (within noise)"),
                f"{gap:.0%}" if gap is not None else "n/a",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(
    results: Mapping[str, Mapping], extra: Mapping, costs: Mapping, order: Sequence[str], out: str | Path
) -> None:
    """results.json (method -> summary, plus `extra` at the top), results.md and results.png."""
    out = Path(out)
    write_json_atomically(out / "results.json", {**extra, **results})
    lines = ["# Reproduction on synthetic nuScenes-format data", "", markdown_table(results, costs, order)]
    lines += [f"- {key}: {value}" for key, value in extra.items()]
    write_text_atomically(out / "results.md", "\n".join(lines) + "\n")
    bar_plot(results, order, out / "results.png")


def write_warm_results(
    warm: Path, runs: dict[str, list[dict]], steps: int, clean: dict[str, list[dict]] | None = None
) -> dict:
    """OUT/warm/results.md and .json: a Table-2-style table per weighting, gains over the warm apprentice,
    paired comparisons; for a ray-artefact study, each method against itself with the clean expert.
    OUT/warm/results.png draws the paired comparisons, one panel per weighting (and one against the
    clean expert)."""
    results = {name: summarize(group) for name, group in runs.items()}
    calibration = {
        path.stem: json.loads(path.read_text()) for path in sorted((warm / "calibration").glob("*.json"))
    }
    lines = [f"# Warm-start protocol: {steps} steps from one apprentice trained alone", ""]
    gains, paired, panels = {}, {}, {}
    for weighting in WARM_WEIGHTINGS:
        rows = weighting_rows(results, weighting)
        if len(rows) <= 2:
            continue
        lines += [
            f"## {weighting} weights",
            "",
            markdown_table(rows, {}, ["expert", *WARM_METHODS]),
        ]
        gains.update(gains_over_apprentice(rows, weighting))
        comparisons = [(name, "apprentice") for name in WARM_METHODS if name not in ("apprentice",)]
        comparisons += WARM_PAIRED_COMPARISONS
        found = paired_comparisons(rows, comparisons)
        lines += [f"### Paired by seed ({weighting} weights)", "", paired_table(found)]
        paired.update({f"{name}@{weighting} vs {baseline}": d for (name, baseline), d in found.items()})
        panels[f"{weighting} weights"] = found
    against_clean = {}
    if clean:
        both = {f"{n} ({label})": summarize(group) for n in clean for label, group in
                (("rays", runs[n]), ("clean", clean[n]))}  # fmt: skip
        found = paired_comparisons(both, [(f"{n} (rays)", f"{n} (clean)") for n in clean])
        lines += ["## Against the clean expert (the same method and seeds)", "", paired_table(found)]
        against_clean = {name.removesuffix(" (rays)"): d for (name, _), d in found.items()}
        panels["against the clean expert"] = found
    if calibration:
        lines += ["## Calibration (gradient norms at the apprentice's features, warm start)", ""]
        lines += ["| method | distillation | detection | scale to matched |", "|---|---|---|---|"]
        lines += [
            f"| {m} | {c['distillation_grad_norm']:.4g} | {c['detection_grad_norm']:.4g} | {c['scale']:.4g} |"
            for m, c in calibration.items()
        ]
    warm.mkdir(parents=True, exist_ok=True)
    content = {"steps": steps, "gains": gains, "paired": paired, "against_clean": against_clean,
               "calibration": calibration, **results}  # fmt: skip
    write_json_atomically(warm / "results.json", content)
    write_text_atomically(warm / "results.md", "\n".join(lines) + "\n")
    if drawn := {title: found for title, found in panels.items() if found}:
        save_figure(paired_figure(drawn), warm / "results.png")
    return content


def balanced_from_calibrated(summaries: Mapping[str, Mapping], rows: Mapping[str, Mapping]) -> dict:
    """{method: its calibrated summary} of the `BALANCED_AS_CALIBRATED` methods the balanced rows lack."""
    return {
        method: summaries[f"{method}@calibrated"]
        for method in BALANCED_AS_CALIBRATED
        if method not in rows and f"{method}@calibrated" in summaries
    }


def write_study_report(
    results: Path, runs: dict[str, list[dict]], curves: dict, plan: dict, similarity: dict | None = None
) -> dict:
    """OUT/results.{md,json}: per weighting a Table-2-style table, gains and gap closed, paired intervals;
    OUT/results.png the paired differences, OUT/curves.png the learning curves."""
    summaries = {name: summarize(group) for name, group in runs.items()}
    lines = [
        f"# Distillation study ({STUDY_PAIR}): {plan['steps']} steps from scratch, distillation throughout",
        "",
    ]
    gains, paired, panels = {}, {}, {}
    for weighting in STUDY_WEIGHTINGS:
        rows = weighting_rows(summaries, weighting)
        if len(rows) <= 2:
            continue
        lines += [f"## {weighting} weights", ""]
        found_gains = gains_over_apprentice(rows, weighting)
        if weighting == "balanced":
            borrowed = balanced_from_calibrated(summaries, rows)
            rows.update(borrowed)
            if borrowed:
                note = "their calibrated runs (one loss per stage: balanced scales = calibrated ones)"
                lines += [f"{', '.join(borrowed)}: {note}.", ""]
        lines += [markdown_table(rows, {}, ["expert", *STUDY_METHODS])]
        gains.update(found_gains)
        if found_gains:
            lines += ["", "| method | ΔNDS | gap closed | ΔmAP |", "|---|---|---|---|"]
            for name, gain in found_gains.items():
                gap = "" if gain["gap_closed"] is None else f"{100 * gain['gap_closed']:.0f} %"
                lines.append(f"| {name} | {gain['NDS_gain']:+.4f} | {gap} | {gain['mAP_gain']:+.4f} |")
            lines.append("")
        trained = [name for name in STUDY_METHODS if f"{name}@{weighting}" in summaries]
        comparisons = [(name, "apprentice") for name in trained]
        comparisons += [("fd3d", name) for name in STUDY_METHODS if name not in ("apprentice", "fd3d")]
        found = paired_comparisons(rows, comparisons)
        keys = {pair: f"{pair[0]}@{weighting} vs {pair[1]}" for pair in found}
        if weighting != "calibrated":  # the same method under the study's main weighting
            across = [(f"{name}@{weighting}", f"{name}@calibrated") for name in trained]
            found.update(extra := paired_comparisons(summaries, across))
            keys.update({pair: " vs ".join(pair) for pair in extra})
        lines += [f"### Paired by seed, NDS ({weighting} weights)", "", paired_table(found), ""]
        paired.update({keys[pair]: d for pair, d in found.items()})
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
    balanced_files = sorted(results.glob("calibration/balanced/*.json"))
    balanced = {path.stem: json.loads(path.read_text()) for path in balanced_files}
    if balanced:
        title = "Balanced weights (`DISTILL.LOSS_STAGE_SCALE`: each stage's fraction shared by its losses)"
        lines += ["", f"{title}:", "", "| method | loss | stage | scale |", "|---|---|---|---|"]
        for method, found in balanced.items():
            for loss, scales in found["loss_stage_scales"].items():
                lines += [f"| {method} | {loss} | {stage} | {scale:.4g} |" for stage, scale in scales.items()]
    if similarity:
        stages = sorted({stage for found in similarity.values() for stage in found})
        title = f"## Features toward the expert's? Linear CKA with it ({SIMILARITY_SAMPLES} val samples)"
        header = ["| model | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
        lines += ["", title, "", *header]
        lines += [f"| {key} | " + " | ".join(f"{found.get(s, float('nan')):.3f}" for s in stages) + " |"
                  for key, found in similarity.items()]  # fmt: skip
    content = {"plan": plan, "gains": gains, "paired": paired, "calibration": calibration,
               "balanced_calibration": balanced, "curves": curves, "similarity": similarity or {},
               **summaries}  # fmt: skip
    write_json_atomically(results / "results.json", content)
    write_text_atomically(results / "results.md", "\n".join(lines) + "\n")
    if drawn := {title: found for title, found in panels.items() if found}:
        save_figure(paired_figure(drawn), results / "results.png")
    if curves:
        save_figure(curves_figure(curves), results / "curves.png")
    return content
