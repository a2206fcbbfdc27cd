"""Learning curves of the PacGAN-network mode-collapse studies, read back from MLflow.

Usage: MLFLOW_TRACKING_URI=sqlite:////work/studies/mlflow.db python curves.py NAME > curves.md
Mean over the 5 seeds of modes covered, high-quality % and reverse KL at every evaluation
(every 500 generator iterations): has the trend settled by the end of the budget?
"""
import sys

import mlflow
import pandas as pd

from harness.study.report.document import md_table

name = sys.argv[1]
client = mlflow.tracking.MlflowClient()
runs = mlflow.search_runs(experiment_names=[name])
runs = runs[runs["tags.mlflow.parentRunId"].notna()]
rows = []
for _, r in runs.iterrows():
    for metric, scale in (("modes_covered", 1), ("hq_share", 100), ("reverse_kl", 1)):
        for m in client.get_metric_history(r["run_id"], metric):
            rows.append({"method": r["params.objective"], "metric": metric, "iteration": m.step, "value": m.value * scale})
df = pd.DataFrame(rows)
print(f"# Learning curves: {name}\n\nMean over seeds at each evaluation (generator iteration); high quality in %.\n")
for metric in ("modes_covered", "hq_share", "reverse_kl"):
    wide = df[df.metric == metric].groupby(["method", "iteration"])["value"].mean().unstack("iteration")
    print(f"## {metric}\n\n" + md_table(wide.round(2), index=True) + "\n")
