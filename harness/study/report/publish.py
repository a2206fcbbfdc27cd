"""Put a built report where people look: the sweep's experiment and parent runs in MLflow.

The MLflow UI is where a team compares runs, so the study should read there as it does in
results/: the experiment carries the experiment file's description, each parent run's
description is the report's answer, and its artifacts hold report.html (self-contained,
images embedded), report.md, trials.csv and the plots. MLflow 3 opens an experiment in its
GenAI mode unless it is tagged as model development (`mlflow.experimentKind`), so the sweep
says which it is.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

NOTE = "mlflow.note.content"            # MLflow's description field (experiments and runs)
KIND = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"
MAX_NOTE = 5000                         # characters; MLflow tags hold 8,000


def answer_section(report_md: str) -> str:
    """The report's `## Answer` section (its first screen), without the heading."""
    match = re.search(r"^## Answer\n(.*?)(?=^## |\Z)", report_md, flags=re.S | re.M)
    text = (match.group(1) if match else report_md).strip()
    return text[:MAX_NOTE]


def describe_experiment(client, exp_id: str, description: str) -> None:
    """The experiment's description and UI mode, set when a sweep opens it."""
    text = (description or "").strip() or "GAN robustness sweep (harness)"
    client.set_experiment_tag(exp_id, NOTE, text[:MAX_NOTE])
    client.set_experiment_tag(exp_id, KIND, MODEL_DEVELOPMENT)


def publish_report(client, name: str, out_dir: Path) -> int:
    """Attach results/NAME/ to each parent run of sweep `name`; returns how many parents.
    The store keeps the latest report (artifact folder `report/`, overwritten on rebuild)."""
    from .. import store
    exp = store.find_experiment(client, name)
    if exp is None:
        return 0
    md = (out_dir / "report.md").read_text()
    parents = store.parents(client, exp.experiment_id)
    for run in parents:
        store.set_tags(client, run.info.run_id, {NOTE: answer_section(md)})
        for item in ("report.html", "report.md", "trials.csv"):
            if (out_dir / item).is_file():
                client.log_artifact(run.info.run_id, str(out_dir / item), "report")
        for folder in ("plots", "samples"):
            if (out_dir / folder).is_dir() and any((out_dir / folder).iterdir()):
                client.log_artifacts(run.info.run_id, str(out_dir / folder), f"report/{folder}")
    return len(parents)


def study_url(base: str, exp_id: str) -> str:
    """The UI page of a sweep's trials: its runs list filtered to the trials, so they are rows
    of their own (not folded under the parent) with their names (method, seed, outcome, score)."""
    trials = quote("tags.role = 'trial'")
    return f"{base.rstrip('/')}/#/experiments/{exp_id}/runs?searchFilter={trials}"
