"""Per-trial summaries of the nsat-ring8 sweep from its MLflow store (the README figures):
G gradient norm averaged over all log points, the first 10 and the last 10; D mean probabilities;
final JS, gap to D*, high-quality share, modes, W1. Run: MLFLOW_TRACKING_URI=sqlite:////tmp/nsat/mlflow.db
PYTHONPATH=. python results/nsat-ring8/grad_norms.py > results/nsat-ring8/grad_norms.txt"""
import mlflow, numpy as np, collections
from mlflow.tracking import MlflowClient
c = MlflowClient()
exp = c.get_experiment_by_name("nsat-ring8")
runs = c.search_runs([exp.experiment_id], max_results=1000)
rows = collections.defaultdict(list)
for r in runs:
    obj = r.data.params.get("objective")
    if not obj: continue
    h = lambda m: [x.value for x in sorted(c.get_metric_history(r.info.run_id, m), key=lambda x: x.step)]
    g = h("grad_norm_g"); pf = h("d_prob_fake"); pr = h("d_prob_real")
    m = r.data.metrics
    rows[obj].append(dict(seed=r.data.params.get("seed"), g_mean=np.mean(g) if g else np.nan, g_first10=np.mean(g[:10]) if g else np.nan,
        g_last=np.mean(g[-10:]) if g else np.nan, pf_mean=np.mean(pf) if pf else np.nan, pr_mean=np.mean(pr) if pr else np.nan,
        js=m.get("js_kde"), gap=m.get("d_gap_mean_abs"), hq=m.get("hq_share"), modes=m.get("modes_covered"), w1=m.get("w1_exact_2k"),
        klgd=m.get("kl_gen_data_kde"), its=m.get("its_per_s"), eval_s=m.get("eval_s")))
for obj in sorted(rows):
    print(obj)
    for d in sorted(rows[obj], key=lambda d: d["seed"]):
        print("   ", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()})
    keys = ["g_mean", "g_first10", "g_last", "pf_mean", "pr_mean", "js", "gap", "hq", "modes", "w1"]
    print("  MEAN", {k: round(float(np.nanmean([d[k] for d in rows[obj] if d[k] is not None])), 4) for k in keys})
