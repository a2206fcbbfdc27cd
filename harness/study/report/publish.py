"""Put a built report where people look: the sweep's experiment and parent runs in MLflow.

The MLflow UI is where a team compares runs, so the study should read there as it does in
results/: the experiment carries the experiment file's description, each parent run's
description is the report's answer, and its artifacts hold report.html (self-contained,
images embedded), report.md, trials.csv and the plots. MLflow 3 opens an experiment in its
GenAI mode unless it is tagged as model development (`mlflow.experimentKind`), so the sweep
says which it is.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

NOTE = "mlflow.note.content"            # MLflow's description field (experiments and runs)
KIND = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"
MAX_NOTE = 5000                         # characters; MLflow tags hold 8,000
# MLflow 3's shared views: an experiment tag `mlflow.sharedViewState.KEY` holds the runs page's
# state, opened by the URL parameter viewStateShareKey=KEY. Runs folded under their parent
# cannot be unfolded by a shared view, but grouped runs are shown in their groups: the study
# view groups the trials by objective, with their seed, architecture, outcome and headline.
VIEW_KEY = "harness-study"
SHARED_VIEW = "mlflow.sharedViewState."


def answer_section(report_md: str) -> str:
    """The report's `## Answer` section (its first screen), without the heading."""
    match = re.search(r"^## Answer\n(.*?)(?=^## |\Z)", report_md, flags=re.S | re.M)
    text = (match.group(1) if match else report_md).strip()
    return text[:MAX_NOTE]


def study_view(headline: str | None = None) -> dict:
    """The runs page as the study reads: trials grouped by objective (the group row shows the
    headline's average), columns objective, seed, architecture, outcome, headline metric."""
    columns = ["params.`objective`", "params.`seed`", "params.`arch_id`", "tags.`status`"]
    if headline:
        columns.append(f"metrics.`{headline}`")
    return {"searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False, "startTime": "ALL",
            "lifecycleFilter": "Active", "modelVersionFilter": "All Runs", "datasetsFilter": [],
            "selectedColumns": columns, "groupsExpanded": {}, "runListHidden": False,
            "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": "objective"}]}}


def describe_experiment(client, exp_id: str, description: str, headline: str | None = None) -> None:
    """The experiment's description, UI mode and study view, set when a sweep opens it (and
    again with the headline metric once a report knows it)."""
    text = (description or "").strip() or "GAN robustness sweep (harness)"
    client.set_experiment_tag(exp_id, NOTE, text[:MAX_NOTE])
    client.set_experiment_tag(exp_id, KIND, MODEL_DEVELOPMENT)
    client.set_experiment_tag(exp_id, SHARED_VIEW + VIEW_KEY, json.dumps(study_view(headline)))


def publish_report(client, name: str, out_dir: Path) -> int:
    """Attach results/NAME/ to each parent run of sweep `name`; returns how many parents.
    The store keeps the latest report (artifact folder `report/`, overwritten on rebuild)."""
    from .. import store
    exp = store.find_experiment(client, name)
    if exp is None:
        return 0
    md = (out_dir / "report.md").read_text()
    parents = store.parents(client, exp.experiment_id)
    if parents:
        experiment = store.load_experiment_dict(client, parents[0].info.run_id)
        describe_experiment(client, exp.experiment_id, experiment.get("description", ""), _headline(out_dir))
    for run in parents:
        store.set_tags(client, run.info.run_id, {NOTE: answer_section(md)})
        for item in ("report.html", "report.md", "trials.csv"):
            if (out_dir / item).is_file():
                client.log_artifact(run.info.run_id, str(out_dir / item), "report")
        for folder in ("plots", "samples"):
            if (out_dir / folder).is_dir() and any((out_dir / folder).iterdir()):
                client.log_artifacts(run.info.run_id, str(out_dir / folder), f"report/{folder}")
    return len(parents)


def _headline(out_dir: Path) -> str | None:
    """The headline metric the report's trials carry (trials.csv's `headline` column)."""
    import pandas as pd
    csv = out_dir / "trials.csv"
    if not csv.is_file():
        return None
    names = pd.read_csv(csv, usecols=lambda c: c == "headline").get("headline", pd.Series(dtype=str)).dropna()
    return str(names.iloc[0]) if len(names) else None


def study_url(base: str, exp_id: str) -> str:
    """The UI page of a sweep: model-training mode, the study view (trials grouped by objective
    with seed, architecture, outcome and headline as columns)."""
    return (f"{base.rstrip('/')}/#/experiments/{quote(str(exp_id))}/runs"
            f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}")
