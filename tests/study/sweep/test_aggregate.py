"""Aggregates onto the parent run: method names with remedies and settings are valid MLflow names."""
import pandas as pd

from harness.config import from_dict
from harness.study import store
from harness.study.sweep.aggregate import aggregate_onto_parent, metric_key


def test_methods_with_remedies_and_settings_aggregate_onto_the_parent(project):
    """MLflow refuses '+', '@' and '=' in metric names: a sweep of gan+pack:2 or
    gan@n_critic=5 once failed here, after every trial had finished."""
    methods = ["gan@n_critic=5", "gan+pack:2", "gan-minimax@n_critic=25+pack:2"]
    assert [metric_key(m) for m in methods] == ["gan_n_critic_5", "gan_pack:2", "gan-minimax_n_critic_25_pack:2"]
    client = store.get_client()
    exp_id = store.open_experiment(client, "agg")
    exp = from_dict({"name": "agg", "dataset": "ring8", "objectives": methods})
    pid = store.start_parent(client, exp_id, "agg", None, exp.to_dict(), 3, "x.yaml")
    df = pd.DataFrame({"trial_id": [f"a-{m}-s0" for m in methods], "arch_id": ["a"] * 3, "objective": methods,
                       "seed": [0] * 3, "status": ["ok", "collapsed", "ok"], "score": [8.0, 1.0, 5.0]})
    values = aggregate_onto_parent(client, pid, df, [2.0], methods)
    logged = client.get_run(pid).data.metrics
    assert logged["success/gan_n_critic_5/2"] == 1 and logged["success/gan_pack:2/2"] == 0
    assert set(values) == set(logged)
