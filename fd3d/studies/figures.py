"""A study's figures: paired differences against zero, NDS per method, learning curves over steps."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from fd3d.atomic import write_atomically
from fd3d.studies.aggregate import verdict

VERDICT_COLORS = {"better": "#2ca02c", "worse": "#d62728", "within noise": "#1f77b4", "one seed": "#888888"}


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
