"""The bench's markdown file: every figure of the JSON, as tables a person reads."""
from __future__ import annotations

import json
import math

from .cpu_speed import cpu_speed_markdown


def _f(x, digits=2):
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}f}"


def cpu_speed_only(r: dict) -> str:
    """The file of `bench --only cpu-speed`."""
    hw = r["hardware"]
    return "\n".join([f"# Benchmark: {hw['device_name']}, CPU at real size", "",
                      f"- CPU: {hw['cpu_model']}, {hw['cpu_count']} cores; torch {hw['torch']}, Python {hw['python']}",
                      f"- date: {hw['date']}; command: `{hw['command']}`; took {r['bench_seconds']:.0f} s; "
                      f"load average at the start {hw.get('load_average_1m', float('nan')):.2f}"]
                     + cpu_speed_markdown(r["cpu_speed"])) + "\n"


def header(r: dict, what: str) -> list[str]:
    hw = r["hardware"]
    return [f"# Benchmark: {hw['device_name']}, {what}", "",
            f"- CPU: {hw['cpu_model']}, {hw['cpu_count']} cores; torch {hw['torch']}, Python {hw['python']}",
            f"- date: {hw['date']}; command: `{hw['command']}`; took {r['bench_seconds']:.0f} s; "
            f"load average at the start {hw.get('load_average_1m', float('nan')):.2f} on {hw['cpu_count']} cores"
            + (f", at the end {r['load_average_end_1m']:.2f}" if "load_average_end_1m" in r else "")]


def profile_only(r: dict) -> str:
    """The file of `bench --only profile`: the profile, its ceilings and the levers."""
    from .levers import levers_markdown
    from .profile import profile_markdown
    m = r["matmul_gflops"]
    lines = header(r, "where a CPU iteration's time goes") + [
        f"- this core's matmul: fp32 {m['fp32']:.1f} GFLOP/s, bf16 {m['bf16']:.2g} GFLOP/s "
        f"(native bf16: {r['profile']['native_bf16']})"]
    return "\n".join(lines + [f"> {n}" for n in r["notes"]] + profile_markdown(r["profile"])
                     + levers_markdown(r["levers"])) + "\n"


def _overheads_markdown(r: dict) -> list[str]:
    """Evaluation cost, a trial's overhead, the sweep path and torch.compile, as report lines."""
    ev, ov = r.get("eval_cost", {}), r.get("trial_overhead", {})
    lines = ["", "Evaluation and overhead:", ""]
    if "error" in ev:
        lines.append(f"- evaluation cost: not measured ({ev['error']})")
    else:
        lines.append(f"- evaluation (IS/FID/KID, fmnist-classifier, {ev['n_samples']} generated samples, real "
                     f"features cached): {_f(ev['seconds'])} s; one-off real-feature extraction "
                     f"{_f(ev['real_features_once_s'])} s; weights: {ev['classifier_weights']}")
    if "error" in ov:
        lines.append(f"- trial overhead: not measured ({ov['error']})")
    else:
        lines.append(f"- a {ov['iterations']}-iteration run_trial ({ov['config']}/gan, {ov['evaluations']} evaluations "
                     f"of {ov['eval_n']} samples): wall {_f(ov['wall_time_s'])} s, training {_f(ov['train_time_s'])} s, "
                     f"evaluation {_f(ov['eval_time_s'])} s, setup and the rest {_f(ov['setup_and_rest_s'])} s: "
                     f"{_pct(ov['outside_training_share'])} of the wall time outside training")
    sw = r.get("sweep_overhead", {})
    lines.append(f"- sweep path (Ray, MLflow): {sw.get('note', json.dumps(sw))}")
    comp = r.get("compile", {})
    if "skipped" in comp:
        lines.append(f"- torch.compile: skipped ({comp['skipped']})")
    else:
        lines += ["", "| torch.compile | speedup | compile s | break-even iterations |", "|---|---|---|---|"]
        for k, v in comp.items():
            lines.append(f"| {k} | " + (f"failed: {v['error']} | | |" if "error" in v else
                                        f"{_f(v['speedup'])} | {_f(v['compile_s'], 0)} | {_f(v['break_even_iters'], 0)} |"))
    return lines


def to_markdown(r: dict) -> str:
    if "profile" in r:
        return profile_only(r)
    if "penalty_precision" in r:
        from .penalty_precision import penalty_precision_markdown
        return "\n".join(header(r, "the penalty's precision") + penalty_precision_markdown(r["penalty_precision"])) + "\n"
    if "w1_solver" in r:
        from .w1_solver import w1_solver_markdown
        return w1_solver_markdown(r)
    if "configs" not in r:
        return cpu_speed_only(r)
    hw, plan = r["hardware"], r["plan"]
    lines = [f"# Benchmark: {hw['device_name']}{' (CPU, reduced configuration)' if hw['device'] == 'cpu' else ''}", ""]
    lines += [f"- device: {hw['device']} — {hw['device_name']}; CPU: {hw['cpu_model']}, {hw['cpu_count']} cores",
              f"- torch {hw['torch']}, CUDA {hw['cuda']}, cuDNN {hw['cudnn']}, Python {hw['python']}",
              f"- date: {hw['date']}; command: `{hw['command']}`; took {r['bench_seconds']:.0f} s",
              f"- mode: {'quick' if plan['quick'] else 'full'}; batch {plan['batch']}; base filters / "
              f"{plan['filter_div']}; concurrent processes {plan['procs']}; peak table: {hw['peak_key'] or 'unknown device'}",
              ""]
    lines += [f"> {n}" for n in r["notes"]] + ([""] if r["notes"] else [])
    procs = plan["procs"]
    head = ["config", "objective", "impl", "precision", "alone it/s"] + [f"{n} procs it/s" for n in procs] + \
           ["GFLOP/it", "alone TFLOP/s", "peak share alone"] + [f"peak share {n}" for n in procs]
    lines += ["Generator iterations per second (n_critic D steps + 1 G step each):", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in r["configs"].values():
        for impl in ("harness", "reference"):
            x = row[impl]
            cells = [f"{row['config']} (f{row['filters']} d{row['depth']})", row["objective"], impl, x["precision"],
                     _f(x["alone_its_per_s"])]
            cells += [_f(x[f"aggregate_{n}"]["its_per_s"]) for n in procs]
            cells += [_f(x["flops_per_iter"] / 1e9), _f(x["alone_tflops"], 3), _pct(x["alone_peak_share"])]
            cells += [_pct(x[f"aggregate_{n}"]["peak_share"]) for n in procs]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", "Ratios harness / reference (same run):", "",
              "| config | objective | alone | " + " | ".join(f"{n} procs" for n in procs) + " |",
              "|---|---|---|" + "---|" * len(procs)]
    for row in r["configs"].values():
        lines.append(f"| {row['config']} | {row['objective']} | {_f(row['ratio_alone'])} | "
                     + " | ".join(_f(row[f'ratio_aggregate_{n}']) for n in procs) + " |")
    lines += _overheads_markdown(r)
    if "cpu_speed" in r:
        lines += cpu_speed_markdown(r["cpu_speed"])
    return "\n".join(lines) + "\n"


def _pct(x):
    return "-" if x is None else f"{100 * x:.1f} %"
