"""The report's pictures: success rate against threshold, metric distributions, factor effects,
the game's curves, the headline metric over training, quality against diversity.

Labels say which side of a metric is better where it is the lower one, and the game panel's
dashed levels and symlog axes come from the metrics' declared metadata (evaluate/metrics.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...evaluate import metrics as declared
from ...evaluate.metrics import MetricInfo
from ..learning_curves import per_trial
from .document import threshold_text


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return path


def plot_success_rates(rates: pd.DataFrame, path: Path, metric: str, lower: bool = False) -> Path:
    """Rate against threshold with its band; the axis says which side of the threshold succeeds."""
    fig, ax = _plt().subplots(figsize=(6, 4), dpi=110)
    for obj, sub in rates.groupby("objective", sort=False):
        ax.plot(sub["threshold"], sub["rate"], marker="o", label=obj)
        ax.fill_between(sub["threshold"], sub["ci_low"], sub["ci_high"], alpha=0.15)
    ax.set_xlabel(f"threshold t on {metric} (success: {metric} {'<' if lower else '>'} t)")
    ax.set_ylabel("success rate (95% CI)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_distributions(df: pd.DataFrame, objectives, metrics, path: Path) -> Path | None:
    """One panel per metric: every trial's final value as a dot, a box per objective."""
    if not metrics:
        return None
    width = max(4.0, 0.45 * len(objectives))     # room for every method's name under its box
    fig, axes = _plt().subplots(1, len(metrics), figsize=(width * len(metrics), 3.8), dpi=110, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        data = [pd.to_numeric(df.loc[df["objective"] == o, metric], errors="coerce").dropna().to_numpy()
                if metric in df else np.array([]) for o in objectives]
        for i, d in enumerate(data):
            if len(d):
                ax.scatter(np.full(len(d), i + 1) + np.linspace(-0.12, 0.12, len(d)), d, s=10, alpha=0.7)
        if any(len(d) for d in data):
            ax.boxplot([d if len(d) else [np.nan] for d in data], widths=0.5, showfliers=False)
        ax.set_xticks(range(1, len(objectives) + 1), objectives, rotation=35, ha="right", fontsize=8)
        ax.set_title(metric + (" (lower is better)" if declared.lower_is_better(metric) else ""), fontsize=9)
    return _save(fig, path)


def plot_paired_differences(diffs: pd.DataFrame, metric: str, path: Path, lower: bool = False) -> Path | None:
    """One row per pair of objectives: the mean paired difference of the score with its 95% CI
    and a line at 0, so the pairs a threshold cannot separate show how close they are."""
    diffs = diffs[np.isfinite(diffs["a - b"].to_numpy(dtype=float))]
    if diffs.empty:
        return None
    fig, ax = _plt().subplots(figsize=(6.5, 0.9 + 0.28 * len(diffs)), dpi=110)
    y = np.arange(len(diffs))[::-1]
    held = diffs["p (Holm)"].to_numpy(dtype=float) < 0.05
    err = np.vstack([diffs["a - b"] - diffs["ci_low"], diffs["ci_high"] - diffs["a - b"]]).clip(min=0)
    for mask, color in ((held, "tab:red"), (~held, "tab:gray")):
        ax.errorbar(diffs["a - b"][mask], y[mask], xerr=err[:, mask], fmt="o", color=color, capsize=3, ms=4)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{a} - {b}" for a, b in zip(diffs["a"], diffs["b"])], fontsize=8)
    better = "; lower is better: negative favours the first" if lower else ""
    ax.set_xlabel(f"paired difference of {metric}, 95% CI\n(red: sign-flip p < 0.05 after Holm{better})", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_factor_effects(effects: pd.DataFrame, objectives, threshold: float, path: Path,
                        lower_metric: str | None = None) -> Path | None:
    """Bars of success rate per factor value; lower_metric: the success metric where success is below t."""
    if effects.empty:
        return None
    factors = list(dict.fromkeys(effects["factor"]))
    ncol = min(4, len(factors))
    nrow = (len(factors) + ncol - 1) // ncol
    fig, axes = _plt().subplots(nrow, ncol, figsize=(3.6 * ncol, 2.8 * nrow), dpi=110, squeeze=False)
    width = 0.8 / max(1, len(objectives))
    for ax, f in zip(axes.flat, factors):
        sub = effects[effects["factor"] == f]
        values = list(dict.fromkeys(sub["value"]))
        for j, obj in enumerate(objectives):
            s = sub[sub["objective"] == obj].set_index("value").reindex(values)
            ax.bar(np.arange(len(values)) + j * width, s["rate"].fillna(0), width, label=obj)
        ax.set_xticks(np.arange(len(values)) + width * (len(objectives) - 1) / 2, values, fontsize=8)
        ax.set_title(f, fontsize=9)
        ax.set_ylim(0, 1)
    for ax in list(axes.flat)[len(factors):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    t = threshold_text(threshold)
    where = f"{lower_metric} < {t}" if lower_metric else f"threshold {t}"
    fig.suptitle(f"success rate by factor value ({where})", fontsize=10)
    return _save(fig, path)


def plot_curves(curves: pd.DataFrame, objectives, path: Path) -> Path | None:
    """One panel per metric: each objective's mean over its trials against the step, one
    colour per objective in every panel. curves: columns objective, metric, step, value.
    A metric's declared `reference` is drawn dashed (the GAN equilibrium D(x) = 1/2, the
    largest JS, log 2), and a `symlog` one on a symlog axis (a KL of thousands of nats until G
    finds the modes, G gradients from 0.001 to 300)."""
    if curves.empty:
        return None
    colour = {obj: f"C{i % 10}" for i, obj in enumerate(objectives)}
    metrics = list(dict.fromkeys(curves["metric"]))
    ncol = min(3, len(metrics))
    nrow = (len(metrics) + ncol - 1) // ncol
    fig, axes = _plt().subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), dpi=110, squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        sub = curves[curves["metric"] == metric]
        for obj, s in sub.groupby("objective", sort=False):
            mean = s.groupby("step")["value"].mean()
            ax.plot(mean.index, mean.to_numpy(), label=obj, color=colour[obj], linewidth=1)
        info = declared.find_metric(metric)
        if info is not None and info.reference is not None:
            ax.axhline(info.reference, color="gray", linestyle="--", linewidth=0.8)
        if info is not None and info.symlog:
            ax.set_yscale("symlog", linthresh=0.1)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("generator iteration", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=colour[o], label=o) for o in objectives]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(objectives), 8), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path)
    _plt().close(fig)
    return path


def plot_learning_curves(curves: pd.DataFrame, objectives, metric: str, path: Path,
                         lines: dict[str, float] | None = None, lower: bool = False) -> Path | None:
    """The headline metric against the generator iteration: every trial a thin line, each
    objective's mean over its trials a thick one, so a reader sees the spread as well as
    whether the climb has flattened by the budget. curves: run_id, objective, metric, step,
    value; lines: label -> level drawn dashed (the real data's score, a threshold)."""
    sub = per_trial(curves, metric)
    if sub.empty:
        return None
    colour = {obj: f"C{i % 10}" for i, obj in enumerate(objectives)}
    fig, ax = _plt().subplots(figsize=(6.4, 4), dpi=110)
    for obj in objectives:
        s = sub[sub["objective"] == obj]
        if s.empty:
            continue
        for _, trial in s.groupby("run_id"):
            trial = trial.sort_values("step")
            ax.plot(trial["step"], trial["value"].to_numpy(), color=colour[obj], linewidth=0.6, alpha=0.25)
        mean = s.groupby("step")["value"].mean()
        ax.plot(mean.index, mean.to_numpy(), color=colour[obj], linewidth=2, marker="o", markersize=3, label=obj)
    for i, (label, level) in enumerate((lines or {}).items()):
        ax.axhline(level, color="gray", linestyle=("--", ":", "-.")[i % 3], linewidth=1, label=label)
    ax.set_xlabel("generator iteration")
    ax.set_ylabel(f"{metric} (thin: trials, thick: mean{'; lower is better' if lower else ''})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_quality_diversity(df: pd.DataFrame, objectives, x: MetricInfo, y: MetricInfo, path: Path) -> Path | None:
    """Every trial as a point, diversity (x, e.g. recall) against quality (y, e.g. precision), one
    colour per objective: a collapsed generator sits high and to the left, a spread but poor one
    low and to the right. Axes span the metrics' declared ranges where those are finite."""
    if x.name not in df or y.name not in df:
        return None
    values = df.assign(_x=pd.to_numeric(df[x.name], errors="coerce"), _y=pd.to_numeric(df[y.name], errors="coerce"))
    values = values[values["_x"].notna() & values["_y"].notna()]
    if values.empty:
        return None
    fig, ax = _plt().subplots(figsize=(5.2, 4.4), dpi=110)
    for i, obj in enumerate(objectives):
        s = values[values["objective"] == obj]
        if len(s):
            ax.scatter(s["_x"], s["_y"], s=18, alpha=0.75, color=f"C{i % 10}", label=obj)
    for info, set_lim in ((x, ax.set_xlim), (y, ax.set_ylim)):
        low, high = info.bounds()
        if np.isfinite(low) and np.isfinite(high):
            set_lim(low - 0.02 * (high - low), high + 0.02 * (high - low))
    ax.set_xlabel(f"{x.name} ({x.group}, {x.direction_text()})")
    ax.set_ylabel(f"{y.name} ({y.group}, {y.direction_text()})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
