"""Robustness report from the MLflow store alone: tables in the paper's format, plots, trials.csv.

Success of a trial at threshold t: its status is ok AND its headline metric (the
evaluator's, e.g. an Inception score or modes covered; all higher-is-better) is > t.
Diverged, collapsed and failed trials never succeed: a collapsed generator is a failure
mode the threshold metric can miss, and the status counts are reported beside.
Trials are paired by (arch_id, seed) for the only-A / only-B / both / neither tables.
Every child run of the study's MLflow experiment counts, so shards merge by themselves.
"""
from __future__ import annotations

import html
import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

FACTORS = ("nonlin_g", "nonlin_d", "depth_g", "depth_d", "norm_g", "norm_d", "filters_g", "filters_d")
STATUSES = ("ok", "diverged", "collapsed", "failed")


# ---- tables (pure pandas; tracking.py logs them onto the parent run too) ----------------

def scores(df: pd.DataFrame) -> pd.Series:
    """Each trial's final headline metric (NaN where it has none)."""
    if df.empty:
        return pd.Series(dtype=float)
    return pd.Series([row.get(f"m:{row['headline']}", np.nan) if row.get("headline") else np.nan
                      for _, row in df.iterrows()], index=df.index, dtype=float)


def success(df: pd.DataFrame, threshold: float) -> pd.Series:
    return (df["status"] == "ok") & (scores(df) > threshold)


def success_counts(df: pd.DataFrame, thresholds, objectives) -> pd.DataFrame:
    """Rows: thresholds; columns: objectives; cells: trials that succeeded."""
    out = pd.DataFrame(0, index=pd.Index([float(t) for t in thresholds], name="threshold"),
                       columns=list(objectives), dtype=int)
    if df.empty:
        return out
    for t in out.index:
        ok = success(df, t)
        for obj in objectives:
            out.loc[t, obj] = int(ok[df["objective"] == obj].sum())
    return out


def pair_table(df: pd.DataFrame, a: str, b: str, thresholds) -> pd.DataFrame:
    """The paper's table for objectives a and b: trials paired by (arch_id, seed)."""
    rows = []
    keys = ["arch_id", "seed"]
    for t in thresholds:
        s = df.assign(success=success(df, t)) if len(df) else df.assign(success=[])
        left = s[s["objective"] == a][keys + ["success"]]
        right = s[s["objective"] == b][keys + ["success"]]
        m = left.merge(right, on=keys, suffixes=("_a", "_b"))
        sa, sb = m["success_a"].astype(bool), m["success_b"].astype(bool)
        rows.append({"threshold": float(t), f"only {a}": int((sa & ~sb).sum()), f"only {b}": int((~sa & sb).sum()),
                     "both succeeded": int((sa & sb).sum()), "both failed": int((~sa & ~sb).sum()),
                     "pairs": len(m)})
    return pd.DataFrame(rows)


def all_pair_tables(df: pd.DataFrame, thresholds, objectives) -> pd.DataFrame:
    """Every pair of objectives in long format: a, b, threshold, only_a, only_b, both, neither."""
    rows = []
    for a, b in itertools.combinations(objectives, 2):
        for r in pair_table(df, a, b, thresholds).to_dict("records"):
            rows.append({"a": a, "b": b, "threshold": r["threshold"], "only_a": r[f"only {a}"],
                         "only_b": r[f"only {b}"], "both": r["both succeeded"], "neither": r["both failed"],
                         "pairs": r["pairs"]})
    return pd.DataFrame(rows, columns=["a", "b", "threshold", "only_a", "only_b", "both", "neither", "pairs"])


def status_counts(df: pd.DataFrame, objectives) -> pd.DataFrame:
    out = pd.DataFrame(0, index=pd.Index(list(objectives), name="objective"), columns=list(STATUSES), dtype=int)
    for obj in objectives:
        sub = df[df["objective"] == obj] if len(df) else df
        for st in STATUSES:
            out.loc[obj, st] = int((sub["status"] == st).sum()) if len(sub) else 0
    out["total"] = out.sum(axis=1)
    return out


def success_rates(df: pd.DataFrame, thresholds, objectives, n_resamples: int = 2000) -> pd.DataFrame:
    """Success rate per objective and threshold with a 95 % bootstrap CI (scipy, percentile)."""
    from scipy.stats import bootstrap
    rows = []
    for obj in objectives:
        sub = df[df["objective"] == obj] if len(df) else df
        for t in thresholds:
            x = success(sub, t).to_numpy(dtype=float) if len(sub) else np.array([])
            rate = float(x.mean()) if len(x) else np.nan
            lo = hi = rate
            if len(x) > 1 and 0 < x.sum() < len(x):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ci = bootstrap((x,), np.mean, n_resamples=n_resamples, method="percentile",
                                   confidence_level=0.95, rng=np.random.default_rng(0)).confidence_interval
                lo, hi = float(ci.low), float(ci.high)
            rows.append({"objective": obj, "threshold": float(t), "rate": rate, "ci_low": lo, "ci_high": hi,
                         "n": len(x)})
    return pd.DataFrame(rows)


def reference_threshold(df: pd.DataFrame, thresholds) -> float:
    """The threshold whose overall success rate is nearest 50 %: where factors tell most apart."""
    if df.empty:
        return float(thresholds[0])
    rates = [(abs(success(df, t).mean() - 0.5), float(t)) for t in thresholds]
    return min(rates)[1]


def factor_effects(df: pd.DataFrame, threshold: float, objectives) -> pd.DataFrame:
    """Success rate of each objective among trials with each value of each architecture factor."""
    rows = []
    if df.empty:
        return pd.DataFrame(columns=["factor", "value", "objective", "rate", "n"])
    ok = success(df, threshold)
    for f in FACTORS:
        col = f"arch.{f}"
        if col not in df or df[col].nunique() < 2:
            continue
        for value in sorted(df[col].dropna().unique(), key=_sort_key):
            for obj in objectives:
                mask = (df[col] == value) & (df["objective"] == obj)
                if mask.any():
                    rows.append({"factor": f, "value": value, "objective": obj,
                                 "rate": float(ok[mask].mean()), "n": int(mask.sum())})
    return pd.DataFrame(rows, columns=["factor", "value", "objective", "rate", "n"])


def _sort_key(v):
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def md_table(df: pd.DataFrame, index: bool = False, floatfmt: str = "{:.3g}") -> str:
    """A pipe table without the tabulate dependency."""
    d = df.reset_index() if index else df
    def fmt(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else floatfmt.format(v)
        return str(v)
    lines = ["| " + " | ".join(map(str, d.columns)) + " |", "|" + "---|" * len(d.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in d.itertuples(index=False)]
    return "\n".join(lines)


def tables_markdown(df: pd.DataFrame, thresholds, objectives) -> str:
    """Success counts and every pair table as markdown (also the parent run's artifact)."""
    parts = ["## Successes per objective (trials with status ok and headline metric > threshold)", "",
             md_table(success_counts(df, thresholds, objectives), index=True), ""]
    for a, b in itertools.combinations(objectives, 2):
        parts += [f"## {a} vs {b} (paired by architecture and seed)", "",
                  md_table(pair_table(df, a, b, thresholds)), ""]
    return "\n".join(parts)


def published_comparison(df: pd.DataFrame, key: str, thresholds) -> tuple[pd.DataFrame, str] | None:
    """Ours next to the published pair table, at the thresholds the source lists."""
    from .published import published_pair_table
    pub = published_pair_table(key)
    if df.empty or not {pub.a, pub.b} <= set(df["objective"]):
        return None
    ts = [t for t in sorted(pub.rows)]
    ours = pair_table(df, pub.a, pub.b, ts)
    cols = [f"only {pub.a}", f"only {pub.b}", "both succeeded", "both failed"]
    rows = []
    for t, (_, r) in zip(ts, ours.iterrows()):
        row = {"threshold": t}
        for c, p in zip(cols, pub.rows[t]):
            row[c] = f"{int(r[c])} / {p}"
        rows.append(row)
    note = (f"Ours / published ({pub.source}; {pub.setting}). Ours has {int(ours['pairs'].iloc[0])} "
            f"paired architectures, the paper {pub.n}.")
    return pd.DataFrame(rows), note


# ---- plots ---------------------------------------------------------------------------

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_success_rates(rates: pd.DataFrame, path: Path, metric: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for obj, sub in rates.groupby("objective", sort=False):
        ax.plot(sub["threshold"], sub["rate"], marker="o", label=obj)
        ax.fill_between(sub["threshold"], sub["ci_low"], sub["ci_high"], alpha=0.15)
    ax.set_xlabel(f"threshold on {metric}")
    ax.set_ylabel("success rate (95% bootstrap CI)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def distribution_metrics(df: pd.DataFrame) -> list[str]:
    """The headline metric(s), then FID / KID style metrics found among the final metrics."""
    heads = [h for h in df["headline"].dropna().unique() if h] if len(df) else []
    others = sorted(c[2:] for c in df.columns if c.startswith("m:") and c[2:].lower().startswith(("fid", "kid")))
    return list(dict.fromkeys(heads + others))[:4]


def plot_distributions(df: pd.DataFrame, objectives, metrics, path: Path) -> Path | None:
    if not metrics:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6), dpi=110, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        data = [pd.to_numeric(df.loc[df["objective"] == o, f"m:{metric}"], errors="coerce").dropna().to_numpy()
                if f"m:{metric}" in df else np.array([]) for o in objectives]
        for i, d in enumerate(data):
            if len(d):
                ax.scatter(np.full(len(d), i + 1) + np.linspace(-0.12, 0.12, len(d)), d, s=10, alpha=0.7)
        if any(len(d) for d in data):
            ax.boxplot([d if len(d) else [np.nan] for d in data], widths=0.5, showfliers=False)
        ax.set_xticks(range(1, len(objectives) + 1), objectives, rotation=30, fontsize=8)
        ax.set_title(metric, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_factor_effects(effects: pd.DataFrame, objectives, threshold: float, path: Path) -> Path | None:
    if effects.empty:
        return None
    plt = _plt()
    factors = list(dict.fromkeys(effects["factor"]))
    ncol = min(4, len(factors))
    nrow = (len(factors) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.8 * nrow), dpi=110, squeeze=False)
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
    fig.suptitle(f"success rate by factor value (threshold {threshold:g})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# ---- the report ----------------------------------------------------------------------

class _Doc:
    """Blocks rendered both as markdown and as HTML, so the two never disagree."""

    def __init__(self):
        self.blocks = []

    def h(self, level, text): self.blocks.append(("h", level, text))
    def p(self, text): self.blocks.append(("p", text))
    def table(self, df, index=False): self.blocks.append(("table", df, index))
    def img(self, rel, caption): self.blocks.append(("img", rel, caption))
    def code(self, text): self.blocks.append(("code", text))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                out.append(md_table(b[1], index=b[2]))
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})")
            else:
                out.append("```\n" + b[1] + "\n```")
            out.append("")
        return "\n".join(out)

    def html(self, title: str) -> str:
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
               "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
               "text-align:right}img{max-width:100%}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{html.escape(b[1])}</p>")
            elif b[0] == "table":
                out.append(b[1].to_html(index=b[2], float_format=lambda v: f"{v:.3g}", na_rep=""))
            elif b[0] == "img":
                out.append(f"<figure><img src='{html.escape(b[1])}'><figcaption>{html.escape(b[2])}"
                           "</figcaption></figure>")
            else:
                out.append(f"<pre>{html.escape(b[1])}</pre>")
        out.append("</body></html>")
        return "\n".join(out)


def load_study(name: str):
    """(trials DataFrame, the study's experiment dict, parent runs) from MLflow."""
    from .tracking import children, experiment_id, get_client, load_experiment_dict, parents, runs_frame
    client = get_client()
    exp_id = experiment_id(client, name)
    if exp_id is None:
        from .cli import UsageError
        raise UsageError(f"name: no sweep named {name!r} in the MLflow store")
    parent_runs = sorted(parents(client, exp_id), key=lambda r: r.data.tags.get("shard", ""))
    if not parent_runs:
        from .cli import UsageError
        raise UsageError(f"name: the MLflow experiment {name!r} holds no sweep")
    experiment = load_experiment_dict(client, parent_runs[0].info.run_id)
    df = runs_frame(children(client, exp_id))
    return client, df, experiment, parent_runs


def _sample_grids(client, df: pd.DataFrame, objectives, out: Path, per_objective: int = 1) -> list[tuple[str, str]]:
    """The best trial's samples.png per objective (and the worst ok one where there are several)."""
    picked = []
    sc = scores(df)
    for obj in objectives:
        sub = df[(df["objective"] == obj)].assign(score=sc).sort_values("score", ascending=False)
        sub = sub[sub["score"].notna()]
        chosen = [("best", sub.iloc[0])] if len(sub) else []
        if len(sub) > 1:
            chosen.append(("worst", sub.iloc[-1]))
        for label, row in chosen:
            try:
                path = Path(client.download_artifacts(row["run_id"], "samples.png", str(out)))
            except Exception:  # noqa: BLE001 - a trial without samples (diverged) has no grid
                continue
            target = out / f"{row['trial_id']}.png"
            path.replace(target)
            picked.append((f"samples/{target.name}",
                           f"{obj}, {label}: {row['trial_id']} ({row['headline']} {row['score']:.3g}, {row['status']})"))
    return picked


def build_report(name: str, out_root: str | Path = "results") -> Path:
    """Write results/NAME/{report.md, report.html, trials.csv, plots/, samples/}; returns report.md."""
    client, df, exp, parent_runs = load_study(name)
    out = Path(out_root) / name
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    objectives = list(exp["objectives"])
    thresholds = [float(t) for t in exp["thresholds"]]
    metric = (df["headline"].dropna().iloc[0] if len(df) and df["headline"].notna().any() else None) \
        or exp.get("success_metric") or "headline metric"

    csv = df.drop(columns=[c for c in ("start_time",) if c in df]).rename(
        columns={c: c[2:] for c in df.columns if c.startswith("m:")})
    csv.to_csv(out / "trials.csv", index=False)

    doc = _Doc()
    doc.h(1, f"Robustness study: {name}")
    doc.p(f"{exp.get('description') or ''}".strip() or f"Experiment {exp.get('name')}.")
    expected = {}
    for r in parent_runs:
        expected[r.data.tags.get("shard", "?")] = r
    shards = ", ".join(f"{s} ({r.info.status.lower()})" for s, r in expected.items())
    doc.p(f"Dataset {exp['dataset']}; objectives {', '.join(objectives)}; seeds {exp['seeds']}; "
          f"{exp['budget']['iterations']} generator iterations at batch {exp['budget']['batch_size']}; "
          f"evaluator {df['evaluator'].iloc[0] if 'evaluator' in df and len(df) else exp['eval']['evaluator']} "
          f"with {exp['eval']['n_samples']} samples. Trials recorded: {len(df)}. Sweep runs (shards): {shards}.")
    first = parent_runs[0].data.tags
    doc.p(f"Command: {first.get('command', '?')}. Hardware: {first.get('hardware', '?')}. "
          f"Versions: {first.get('versions', '?')}.")
    doc.p(f"Success at threshold t: status ok and {metric} > t. Diverged, collapsed and failed trials "
          "never succeed. Pairs are matched by (architecture id, seed).")
    if df.empty:
        doc.p("No trial has been recorded yet.")
    else:
        doc.h(2, "Outcomes")
        doc.table(status_counts(df, objectives), index=True)
        doc.h(2, "Successes per objective and threshold")
        counts = success_counts(df, thresholds, objectives)
        n = status_counts(df, objectives)["total"]
        doc.table(counts.apply(lambda col: col.astype(str) + f" / {n[col.name]}"), index=True)
        rates = success_rates(df, thresholds, objectives)
        doc.img(str(plot_success_rates(rates, out / "plots" / "success_rate.png", metric).relative_to(out)),
                "success rate against threshold, 95% bootstrap confidence band")
        for a, b in itertools.combinations(objectives, 2):
            doc.h(2, f"{a} vs {b}")
            doc.table(pair_table(df, a, b, thresholds))
        if exp.get("reproduces"):
            comp = published_comparison(df, exp["reproduces"], thresholds)
            if comp is not None:
                doc.h(2, f"Beside the published table ({exp['reproduces']})")
                doc.p(comp[1])
                doc.table(comp[0])
        dist = plot_distributions(df, objectives, distribution_metrics(df), out / "plots" / "distributions.png")
        if dist:
            doc.h(2, "Final metric distributions")
            doc.img(str(dist.relative_to(out)), "final metrics per objective (every trial with a value)")
        t_ref = reference_threshold(df, thresholds)
        effects = factor_effects(df, t_ref, objectives)
        if not effects.empty:
            doc.h(2, f"Architecture factors (threshold {t_ref:g}, where about half the trials succeed)")
            cells = effects.assign(cell=effects["rate"].map("{:.2f}".format) + " (" + effects["n"].astype(str) + ")")
            order = list(dict.fromkeys(zip(cells["factor"], cells["value"])))
            wide = cells.set_index(["factor", "value", "objective"])["cell"].unstack("objective")
            doc.table(wide.reindex(index=pd.MultiIndex.from_tuples(order, names=["factor", "value"]),
                                   columns=[o for o in objectives if o in wide.columns]).fillna(""), index=True)
            fe = plot_factor_effects(effects, objectives, t_ref, out / "plots" / "factor_effects.png")
            doc.img(str(fe.relative_to(out)), "success rate per factor value and objective")
        grids = _sample_grids(client, df, objectives, out / "samples")
        if grids:
            doc.h(2, "Samples")
            for rel, caption in grids:
                doc.img(rel, caption)
        failed = df[df["status"] == "failed"]
        if len(failed):
            doc.h(2, "Failed trials")
            doc.table(failed[["trial_id", "error"]].assign(error=failed["error"].fillna("").str.split("\n").str[0]))
    doc.h(2, "Experiment")
    doc.code(json.dumps(exp, indent=1))
    (out / "report.md").write_text(doc.markdown())
    (out / "report.html").write_text(doc.html(f"Robustness study: {name}"))
    return out / "report.md"
