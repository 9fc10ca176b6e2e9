"""Aggregating a reproduction study: per-method metrics over seeds, gains, gap closed, table and plot.

The paper's claim is about differences of a few NDS points, so every number is reported as mean ± std
over seeds, and a gain over the apprentice counts as real only when it exceeds the seeds' spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from scipy import stats

from fd3d.atomic import write_atomically, write_json_atomically, write_text_atomically
from fd3d.evaluation.nuscenes_eval import METRIC_KEYS

VERDICT_COLORS = {"better": "#2ca02c", "worse": "#d62728", "within noise": "#1f77b4", "one seed": "#888888"}


def summarize(runs: Sequence[Mapping]) -> dict:
    """Runs of one method ({"seed", "metrics", "weights"}) -> lists per metric plus NDS mean and std."""
    ordered = sorted(runs, key=lambda run: run["seed"])
    summary: dict = {
        "seeds": [run["seed"] for run in ordered],
        "weights": [run["weights"] for run in ordered],
    }
    for key in METRIC_KEYS:
        values = [run["metrics"][key] for run in ordered]
        summary[key] = values
        summary[f"{key}_mean"] = statistics.fmean(values)
        summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary


def gain_and_gap(method: Mapping, apprentice: Mapping, expert: Mapping) -> tuple[float, float | None, bool]:
    """(NDS gain over the apprentice, share of the expert-apprentice gap closed, gain beyond the spread).

    A gain (or a loss) is real when its size exceeds the larger of the two methods' seed standard
    deviations (and both have more than one seed); the gap share is None when the expert is not better.
    """
    gain = method["NDS_mean"] - apprentice["NDS_mean"]
    gap = expert["NDS_mean"] - apprentice["NDS_mean"]
    spread = max(method["NDS_std"], apprentice["NDS_std"])
    real = len(method["seeds"]) > 1 and len(apprentice["seeds"]) > 1 and abs(gain) > spread
    return gain, (gain / gap if gap > 0 else None), real


def weighting_rows(results: Mapping[str, Mapping], weighting: str) -> dict[str, Mapping]:
    """The table of one weighting of a study: the expert, the apprentice alone (when run) and every
    "<method>@<weighting>" summary under its method's name."""
    rows = {"expert": results["expert"]}
    if "apprentice" in results:
        rows["apprentice"] = results["apprentice"]
    rows.update({n.split("@")[0]: r for n, r in results.items() if n.endswith(f"@{weighting}")})
    return rows


def gains_over_apprentice(rows: Mapping[str, Mapping], weighting: str) -> dict[str, dict]:
    """{"<method>@<weighting>": {"NDS_gain", "gap_closed", "beyond_seed_spread", "mAP_gain"}} of a
    weighting's rows against their apprentice (empty without one)."""
    if "apprentice" not in rows:
        return {}
    keys = ("NDS_gain", "gap_closed", "beyond_seed_spread")
    gains = {}
    for name, summary in rows.items():
        if name not in ("expert", "apprentice"):
            values = gain_and_gap(summary, rows["apprentice"], rows["expert"])
            gain = dict(zip(keys, values, strict=True))
            gain["mAP_gain"] = summary["mAP_mean"] - rows["apprentice"]["mAP_mean"]
            gains[f"{name}@{weighting}"] = gain
    return gains


def paired_difference(method: Mapping, baseline: Mapping, confidence: float = 0.95) -> dict | None:
    """NDS of `method` minus `baseline`, seed by seed over the seeds both have (runs of one seed share the
    data order and the random draws, so the per-seed difference removes most of the seed's own effect).

    Returns {"seeds", "differences", "mean", "std", "low", "high", "real"}: a Student-t interval of the
    mean difference at `confidence`, `real` when it excludes zero; with one common seed there is no
    interval (low = high = None, not real). None when no seed is shared.
    """
    baseline_nds = dict(zip(baseline["seeds"], baseline["NDS"], strict=True))
    pairs = zip(method["seeds"], method["NDS"], strict=True)
    common = [(seed, nds) for seed, nds in pairs if seed in baseline_nds]
    if not common:
        return None
    differences = [nds - baseline_nds[seed] for seed, nds in common]
    mean = statistics.fmean(differences)
    result = {"seeds": [seed for seed, _ in common], "differences": differences, "mean": mean,
              "std": 0.0, "low": None, "high": None, "real": False}  # fmt: skip
    if len(differences) > 1:
        std = statistics.stdev(differences)
        half = stats.t.ppf(0.5 + confidence / 2, len(differences) - 1) * std / len(differences) ** 0.5
        low, high = mean - half, mean + half
        result.update(std=std, low=low, high=high, real=bool(low > 0 or high < 0))
    return result


def paired_comparisons(
    results: Mapping[str, Mapping], rows: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict]:
    """{(A, B): paired_difference(A, B)} for the rows whose two runs exist and share a seed, in row order."""
    found = {}
    for name, baseline in rows:
        if name in results and baseline in results:
            if (paired := paired_difference(results[name], results[baseline])) is not None:
                found[(name, baseline)] = paired
    return found


def verdict(paired: Mapping) -> str:
    """The verdict on a paired difference: better or worse when its interval excludes zero, else within
    noise (or one seed, without an interval)."""
    if paired["low"] is None:
        return "one seed"
    if not paired["real"]:
        return "within noise"
    return "better" if paired["mean"] > 0 else "worse"


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


def paired_figure(panels: Mapping[str, Mapping[tuple[str, str], Mapping]]) -> Figure:
    """One panel per title (e.g. per weighting), one row per comparison "A vs B" of `paired_comparisons`:
    the per-seed NDS differences as dots, their mean as a diamond and the paired 95 % interval as a bar
    coloured by verdict, with zero marked.

    The study's verdicts are statements about intervals around zero; a table of numbers hides which ones
    cross it, this picture shows it at a glance.
    """
    if not panels:
        raise ValueError("paired_figure needs at least one panel of comparisons")
    rows = max(len(comparisons) for comparisons in panels.values())
    figure = Figure(figsize=(6.5 * len(panels), 0.32 * rows + 1.6), dpi=100)
    all_axes = figure.subplots(1, len(panels), squeeze=False, sharex=True)[0]
    for axes, (title, comparisons) in zip(all_axes, panels.items(), strict=True):
        labels = []
        for row, ((name, baseline), paired) in enumerate(comparisons.items()):
            color = VERDICT_COLORS[verdict(paired)]
            axes.scatter(paired["differences"], [-row] * len(paired["differences"]), s=10, color="#444444",
                         zorder=3)  # fmt: skip
            if paired["low"] is not None:
                axes.hlines(-row, paired["low"], paired["high"], color=color, linewidth=3, alpha=0.7)
            axes.plot([paired["mean"]], [-row], marker="D", color=color, zorder=4)
            labels.append(f"{name} vs {baseline}")
        axes.set_yticks([-row for row in range(len(labels))], labels)
        axes.set_ylim(-rows + 0.5, 0.5)
        axes.axvline(0.0, color="black", linewidth=0.8)
        axes.set_xlabel("ΔNDS paired by seed: seeds (dots), mean, 95 % interval")
        axes.set_title(title)
        axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write `figure` as a PNG atomically (a reader never sees half an image)."""
    return write_atomically(path, lambda partial: figure.savefig(partial, format="png"))


def bar_plot(results: Mapping[str, Mapping], order: Sequence[str], path: str | Path) -> Path:
    """NDS mean with std error bars per method; the expert and the apprentice as reference lines."""
    names = [name for name in order if name in results]
    means = [results[name]["NDS_mean"] for name in names]
    stds = [results[name]["NDS_std"] for name in names]
    figure = Figure(figsize=(1.2 * len(names) + 2, 4), dpi=100)
    axes = figure.subplots()
    colors = [
        "#888888" if n in ("expert", "apprentice") else ("#d62728" if n == "fd3d" else "#1f77b4")
        for n in names
    ]
    axes.bar(names, means, yerr=stds, capsize=4, color=colors)
    for reference, style in (("expert", "--"), ("apprentice", ":")):
        if reference in results:
            axes.axhline(
                results[reference]["NDS_mean"], color="black", linestyle=style, linewidth=1, label=reference
            )
    low = min(m - s for m, s in zip(means, stds, strict=True))
    high = max(m + s for m, s in zip(means, stds, strict=True))
    axes.set_ylim(max(0.0, low - 0.05), min(1.0, high + 0.05))
    axes.set_ylabel("NDS (official devkit, val)")
    axes.set_title("FD3D vs baselines, mean ± std over seeds")
    axes.legend(loc="upper right")
    axes.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    return save_figure(figure, path)


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
