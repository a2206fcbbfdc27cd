"""Success counts and robustness tables onto a sweep's parent run."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pandas as pd

from ...record import OUTCOMES
from .. import results, store
from ..report.answer import tables_markdown


def metric_key(method: str) -> str:
    """A method as part of an MLflow metric name, which allows only letters, digits, '_', '-',
    '.', ' ', ':' and '/': a remedy's '+' and a setting's '@' and '=' become '_'
    (gan+pack:4 -> gan_pack:4, gan@n_critic=5 -> gan_n_critic_5). The tables (artifacts) and
    the report keep the full name."""
    return re.sub(r"[^A-Za-z0-9_. :-]", "_", method)


def aggregate_onto_parent(client, parent_id: str, df: pd.DataFrame, thresholds, objectives,
                          rule: str = "paper", prefix: str = "") -> dict:
    """Metrics success/OBJ/T, trials/OBJ and status/OBJ/STATUS, the tables as artifacts. Returns the metrics."""
    counts = results.success_counts(df, thresholds, objectives, rule)
    values = {f"{prefix}success/{metric_key(obj)}/{thr:g}": int(counts.loc[thr, obj])
              for thr in counts.index for obj in counts.columns}
    outcomes = results.status_counts(df, objectives)
    for obj in objectives:
        values[f"{prefix}trials/{metric_key(obj)}"] = int(outcomes.loc[obj, "total"])
        values.update({f"{prefix}status/{metric_key(obj)}/{st}": int(outcomes.loc[obj, st]) for st in OUTCOMES})
    store.log_points(client, parent_id, [(0, values)])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tables"
        folder.mkdir()
        counts.to_csv(folder / "success_counts.csv")
        results.all_pair_tables(df, thresholds, objectives, rule).to_csv(folder / "pairs.csv", index=False)
        (folder / "robustness.md").write_text(tables_markdown(df, thresholds, objectives, rule))
        client.log_artifacts(parent_id, str(folder), f"{prefix}tables")
    return values
