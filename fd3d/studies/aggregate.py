"""Aggregating a study: per-method metrics over seeds, gains, gap closed, differences paired by seed.

The paper's claim is about differences of a few NDS points, so every number is reported as mean ± std
over seeds, and a gain over the apprentice counts as real only when it exceeds the seeds' spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from scipy import stats

from fd3d.evaluation.nuscenes_eval import METRIC_KEYS


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
