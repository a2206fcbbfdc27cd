"""The study layer: sweeps of trials (Ray Tune), their records (MLflow), reports (pandas).

Imports point down only: `results` (pure pandas) <- `store` (MLflow) <- `report`
(read-only) <- `sweep` (writes). Everything here may use the trial layer below
(harness.trial, harness.train, ...); nothing there imports from here.
"""
