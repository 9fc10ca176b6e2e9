"""Devkit metrics (NDS, mAP, ...) of several models as labelled grouped bars."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fd3d.evaluation.visualize.common import save_figure


def plot_metric_bars(
    results: Mapping[str, Mapping[str, float]], path: str | os.PathLike, keys: Sequence[str] = ("NDS", "mAP")
) -> Path:
    """Grouped bars of `keys` (devkit 0-1 scale) for every model in `results`, each bar labelled."""
    if not results:
        raise ValueError("plot_metric_bars needs the metrics of at least one model")
    missing = {name: [k for k in keys if k not in row] for name, row in results.items()}
    missing = {name: k for name, k in missing.items() if k}
    if missing:
        raise KeyError(f"metrics missing: {missing}")
    figure = Figure(figsize=(1.6 * len(results) * len(keys) + 1.5, 3.6), layout="constrained")
    ax = figure.subplots()
    width = 0.8 / len(results)
    for m, (name, row) in enumerate(results.items()):
        positions = np.arange(len(keys)) + (m - (len(results) - 1) / 2) * width
        bars = ax.bar(positions, [row[k] for k in keys], width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(np.arange(len(keys)), keys)
    ax.set_ylabel("official nuScenes metric (0-1)")
    ax.set_ylim(0, max(1e-3, max(row[k] for row in results.values() for k in keys)) * 1.2)
    ax.legend(fontsize=8)
    ax.grid(axis="y", color="0.85", linewidth=0.5)
    ax.set_axisbelow(True)
    return save_figure(figure, path)
