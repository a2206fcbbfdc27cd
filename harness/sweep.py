"""Ray Tune fan-out of an experiment's trials, tracked in MLflow by the driver.

One Tune trial per (architecture, objective, seed). The same experiment file runs
anywhere: a machine without GPUs runs one trial per `cpus_per_trial` cores; with GPUs
each trial asks for 1 / `trials_per_gpu` of one; with RAY_ADDRESS set the sweep joins
that Ray cluster instead of starting one.

Failure policy: a trial that raises is retried `max_failures` times by Tune, then recorded
failed and the sweep goes on. Diverged and collapsed trials are results, not failures.

Resume and shards rely on MLflow, not on Tune's experiment state: --resume reads which
trials the sweep's parent run already finished (ok / diverged / collapsed) and runs a
fresh Tune experiment over the others (failed ones included), after checking that the
experiment file is unchanged. --shard I/N (I = 1..N) keeps every N-th (architecture,
seed) group, so all objectives of one architecture stay in one shard; each shard has its
own parent run and the report merges them.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from .config import ConfigError, Experiment, Trial, load_experiment


# ---- input checks (before anything is created) ----------------------------------------

def _usage(message: str):
    from .cli import UsageError
    return UsageError(message)


def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return 1, 1
    try:
        i, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise _usage(f"--shard: expected I/N such as 1/4, got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        raise _usage(f"--shard: I/N needs 1 <= I <= N, got {text!r}")
    return i, n


def shard_trials(trials: list[Trial], i: int, n: int) -> list[Trial]:
    """The I-th of N shares: (architecture, seed) groups in experiment order, every N-th from I."""
    groups: dict[tuple, int] = {}
    for t in trials:
        groups.setdefault((t.arch.id, t.seed), len(groups))
    return [t for t in trials if groups[(t.arch.id, t.seed)] % n == i - 1]


def check_inputs(path: str | Path) -> Experiment:
    """Load and validate the experiment, and check its dataset and evaluator are usable here."""
    from .data import get_dataset_spec, load_images
    from .evaluate import EvaluatorUnavailable, make_evaluator
    from .published import PUBLISHED

    exp = load_experiment(path)
    if exp.reproduces is not None and exp.reproduces not in PUBLISHED:
        raise ConfigError("reproduces", f"unknown published study {exp.reproduces!r}; valid: {sorted(PUBLISHED)}")
    if exp.success_metric is not None and not exp.success_metric:
        raise ConfigError("success_metric", "must name a metric or be left out")
    spec = get_dataset_spec(exp.dataset)
    if spec.kind == "image":
        if exp.dataset == "imagenet32":
            from .data import DatasetNotFound
            if not exp.data.path or not Path(exp.data.path).expanduser().exists():
                raise DatasetNotFound(f"data.path: imagenet32 is user-supplied; {exp.data.path!r} does not exist "
                                      "(a folder with train_data_batch_1..10 and val_data, or a .npz with x/y)")
        else:
            load_images(exp.dataset, "train", root=exp.data.root, path=exp.data.path, limit=1)
    try:
        make_evaluator(exp.evaluator_name(), exp.dataset, exp.eval.n_samples, real_split=exp.eval.real_split,
                       device="cpu", weights_path=exp.eval.weights_path, data_root=exp.data.root,
                       data_path=exp.data.path)
    except (EvaluatorUnavailable, ValueError) as err:
        field = "eval.n_samples" if "n_samples" in str(err) else "eval.evaluator"
        raise ConfigError(field, str(err)) from None
    return exp


# ---- the Ray worker ------------------------------------------------------------------

def _trial_config(trial: Trial, threads: int) -> dict:
    return {"trial_id": trial.id, "arch": trial.arch.to_dict(), "objective": trial.objective,
            "seed": trial.seed, "threads": threads}


def _samples_png(samples, dataset: str) -> bytes | None:
    if samples is None:
        return None
    from .data import get_dataset_spec, mixture_modes
    from .plots import save_samples
    modes = mixture_modes(dataset)[0] if get_dataset_spec(dataset).kind == "toy2d" else None
    with tempfile.TemporaryDirectory() as tmp:
        return save_samples(samples, Path(tmp) / "samples.png", modes=modes).read_bytes()


def run_one(config: dict, experiment: dict) -> None:
    """Tune trainable: rebuild the Trial from plain dicts, train it, report metrics and the outcome."""
    import torch
    from ray import tune

    from .config import from_dict
    from .space import Arch
    from .train import run_trial

    config = config["trial"]
    exp = from_dict(experiment)
    trial = Trial(exp, Arch.from_dict(config["arch"]), config["objective"], config["seed"])
    if not exp.train.threads:
        torch.set_num_threads(max(1, int(config["threads"])))

    # metrics travel in batches (every few seconds and at each evaluation): a Tune report
    # is a round trip to the driver, too slow to make at every log point of a fast trial
    points, last = [], [time.monotonic()]

    def flush():
        if points:
            tune.report({"harness": {"points": list(points)}})
            points.clear()
        last[0] = time.monotonic()

    def on_metrics(step, values):
        points.append((int(step), dict(values)))
        if "eval_time_s" in values or time.monotonic() - last[0] > 3.0:
            flush()

    r = run_trial(trial, on_metrics=on_metrics, raise_errors=True)   # raising -> Tune retries
    flush()
    final = {"status": r.status, "metrics": r.metrics, "error": r.error, "iterations": r.iterations,
             "wall_time_s": r.wall_time_s, "train_time_s": r.train_time_s, "eval_time_s": r.eval_time_s,
             "its_per_s": r.its_per_s, "headline": r.headline, "samples_png": _samples_png(r.samples, exp.dataset)}
    tune.report({"harness": {"final": final}})


# ---- driver-side callbacks -----------------------------------------------------------

def _error_text(rtrial) -> str:
    try:
        err = rtrial.get_pickled_error()
        cause = getattr(err, "cause", None) or err
        if cause is not None:
            return f"{type(cause).__name__}: {cause}".strip()[:4000]
    except Exception:  # noqa: BLE001 - fall back to Tune's text file
        pass
    try:
        text = str(rtrial.get_error() or "")
        return text.strip().splitlines()[-1][:4000] if text.strip() else "unknown error"
    except Exception:  # noqa: BLE001
        return "unknown error"


def _callbacks(by_id: dict[str, Trial], runs, sweep_label: str, total: int):
    """Tune callbacks: one writes MLflow child runs, the other prints the progress line."""
    from ray import tune

    class Recorder(tune.Callback):
        def __init__(self):
            self.finals: dict[str, dict] = {}
            self.state: dict[str, str] = {}   # trial id -> running | ok | diverged | collapsed | failed

        def on_trial_start(self, iteration, trials, trial, **info):
            tid = trial.config["trial"]["trial_id"]
            runs.start(tid, by_id[tid].params())
            self.state[tid] = "running"

        def on_trial_result(self, iteration, trials, trial, result, **info):
            h = result.get("harness") or {}
            tid = trial.config["trial"]["trial_id"]
            if "final" in h:
                self.finals[tid] = h["final"]
            if h.get("points"):
                runs.log(tid, h["points"])

        def on_trial_complete(self, iteration, trials, trial, **info):
            tid = trial.config["trial"]["trial_id"]
            final = self.finals.pop(tid, None)
            if final is None:
                runs.error(tid, "the trial ended without reporting a result", final=True)
                self.state[tid] = "failed"
            else:
                runs.finish(tid, final)
                self.state[tid] = final["status"]

        def on_trial_recover(self, iteration, trials, trial, **info):
            tid = trial.config["trial"]["trial_id"]
            runs.error(tid, _error_text(trial), final=False)
            self.state[tid] = "retrying"

        def on_trial_error(self, iteration, trials, trial, **info):
            tid = trial.config["trial"]["trial_id"]
            runs.error(tid, _error_text(trial), final=True)
            self.state[tid] = "failed"

    recorder = Recorder()

    class Progress(tune.Callback):
        """A line on stderr when the counts change (at most every 2 s) or every 30 s."""

        def __init__(self):
            self.start = time.monotonic()
            self.last_text, self.last_time = None, 0.0

        def line(self) -> str:
            states = list(recorder.state.values())
            done = sum(s in ("ok", "diverged", "collapsed", "failed") for s in states)
            failed = states.count("failed")
            running = sum(s in ("running", "retrying") for s in states)
            elapsed = time.monotonic() - self.start
            eta = f"~{_fmt(elapsed / done * (total - done))} left" if done else "time left unknown"
            outcomes = ", ".join(f"{k} {states.count(k)}" for k in ("ok", "diverged", "collapsed") if states.count(k))
            return (f"[{sweep_label}] {done}/{total} done ({outcomes or 'none yet'}), {failed} failed, "
                    f"{running} running, {total - done - running} pending | {_fmt(elapsed)} elapsed, {eta}")

        def on_step_end(self, iteration, trials, **info):
            now = time.monotonic()
            text = self.line()
            changed = text.split("|")[0] != (self.last_text or "").split("|")[0]
            if (changed and now - self.last_time >= 2) or now - self.last_time >= 30:
                print(text, file=sys.stderr, flush=True)
                self.last_text, self.last_time = text, now

        def on_experiment_end(self, trials, **info):
            print(self.line(), file=sys.stderr, flush=True)

    return recorder, Progress()


def _fmt(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


# ---- Ray -----------------------------------------------------------------------------

def _start_ray():
    """Join RAY_ADDRESS's cluster if set, else start a private local one; quiet either way."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")   # MLflow holds the results
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    kwargs = dict(logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False)
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], **kwargs)
    else:
        num_cpus = os.environ.get("HARNESS_RAY_NUM_CPUS")
        ray.init(address="local", num_cpus=int(num_cpus) if num_cpus else None, **kwargs)
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return ray


def trial_resources(exp: Experiment, cluster: dict) -> dict:
    """CPU-only: cpus_per_trial cores; with GPUs (and device not cpu): also 1/trials_per_gpu GPU."""
    res = {"cpu": exp.resources.cpus_per_trial}
    if cluster.get("GPU", 0) > 0 and exp.train.device != "cpu":
        res["gpu"] = 1.0 / exp.resources.trials_per_gpu
    if res["cpu"] > cluster.get("CPU", 0):
        raise _usage(f"resources.cpus_per_trial: {res['cpu']} is more than the {cluster.get('CPU', 0):g} "
                     "CPUs of the Ray cluster")
    return res


def gpu_memory_bytes() -> int | None:
    """Memory of one GPU: HARNESS_GPU_MEMORY_GB (a cluster's workers), else this machine's GPU 0."""
    if os.environ.get("HARNESS_GPU_MEMORY_GB"):
        return int(float(os.environ["HARNESS_GPU_MEMORY_GB"]) * 2**30)
    import torch
    return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None


def trial_gpu_shares(exp: Experiment, trials: list[Trial], gpu_bytes: int | None) -> dict[str, float]:
    """Each trial's GPU fraction: 1/trials_per_gpu unless its memory estimate needs more."""
    from .data import get_dataset_spec
    from .objectives import get_objective
    from .packing import estimate_trial_bytes, gpu_share
    base = 1.0 / exp.resources.trials_per_gpu
    if gpu_bytes is None:
        return {t.id: base for t in trials}
    spec = get_dataset_spec(exp.dataset)
    shape = (2,) if spec.kind == "toy2d" else (spec.channels, 32, 32)
    z_dim = exp.train.z_dim or (2 if spec.kind == "toy2d" else 128)
    cache: dict[tuple, float] = {}
    shares = {}
    for t in trials:
        d_norm = get_objective(t.objective, **exp.objective_overrides.get(t.objective, {})).settings.d_norm
        key = (t.arch, d_norm)
        if key not in cache:
            need = estimate_trial_bytes(t.arch, shape, exp.budget.batch_size, z_dim, d_norm)
            cache[key] = gpu_share(need, gpu_bytes, exp.resources.trials_per_gpu)
        shares[t.id] = cache[key]
    return shares


# ---- the sweep -----------------------------------------------------------------------

def run_sweep(experiment_path: str | Path, name: str | None = None, resume: bool = False,
              shard: str | None = None) -> int:
    """Run (or resume) a sweep; 0 when every trial of the shard has a recorded outcome."""
    from . import tracking

    i, n = parse_shard(shard)
    exp = check_inputs(experiment_path)
    sweep = name or exp.name
    shard_label = f"{i}/{n}"
    trials = shard_trials(exp.trials(), i, n)
    exp_dict = exp.to_dict()

    client = tracking.get_client()
    exp_id = tracking.experiment_id(client, sweep)
    parent_id, kept = None, set()
    if exp_id is not None:
        for run in tracking.parents(client, exp_id):
            other = run.data.tags.get("shard", "1/1")
            if other.split("/")[1] != str(n):
                raise _usage(f"--shard: sweep {sweep!r} was split as {other}, not into {n} shards")
            diff = tracking.experiment_diff(tracking.load_experiment_dict(client, run.info.run_id), exp_dict)
            if diff:
                raise _usage(f"experiment: {experiment_path} differs from the one sweep {sweep!r} began with "
                             f"(shard {other}): " + "; ".join(diff) + ". Use --name for a new sweep.")
            if other == shard_label:
                if not resume:
                    raise _usage(f"--resume: sweep {sweep!r} (shard {shard_label}) already exists in "
                                 f"{tracking.tracking_uri()}; pass --resume to continue it or --name for a new one")
                parent_id = run.info.run_id
    if exp_id is None:
        exp_id = tracking.experiment_id(client, sweep, create=True)
    if parent_id is None:
        parent_id = tracking.start_parent(client, exp_id, sweep, shard_label, exp_dict, len(trials),
                                          str(experiment_path))
    else:
        kept = tracking.prepare_resume(client, exp_id, parent_id)
        client.update_run(parent_id, status="RUNNING")
        tracking.set_tags(client, parent_id, {"resumed": time.strftime("%Y-%m-%d %H:%M:%S")})
    todo = [t for t in trials if t.id not in kept]
    label = sweep if n == 1 else f"{sweep} {shard_label}"
    print(f"[{label}] {len(trials)} trials ({len(kept)} already done, {len(todo)} to run); "
          f"MLflow {tracking.tracking_uri()}, experiment {sweep!r}, parent run {parent_id}", file=sys.stderr)

    runs = tracking.ChildRuns(client, exp_id, parent_id, sweep, shard_label)
    status = "FAILED"
    try:
        if todo:
            _fit(exp, exp_dict, todo, runs, label, sweep, shard_label)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        runs.abort_all("KILLED")
        complete = _aggregate(client, exp_id, parent_id, exp, trials, n)
        if status == "FINISHED" and not complete:
            status = "KILLED"   # Tune stopped early (Ctrl-C): --resume continues
        tracking.end_run(client, parent_id, status)
    print(f"[{label}] done; report: python -m harness report {sweep}", file=sys.stderr)
    return 0 if status == "FINISHED" else 1


def longest_first(exp: Experiment, trials: list[Trial]) -> list[Trial]:
    """Costliest trials first (D steps per iteration x network size), so that the last
    trials of a sweep are short and no core idles while one long trial finishes."""
    from .objectives import get_objective

    def cost(t: Trial) -> float:
        n_critic = get_objective(t.objective, **exp.objective_overrides.get(t.objective, {})).settings.n_critic
        a = t.arch
        return (n_critic + 1) * (a.depth_g * a.filters_g ** 2 + a.depth_d * a.filters_d ** 2)
    return sorted(trials, key=cost, reverse=True)   # stable: ties keep experiment order


def _fit(exp: Experiment, exp_dict: dict, todo: list[Trial], runs, label: str, sweep: str, shard_label: str):
    todo = longest_first(exp, todo)
    ray = _start_ray()
    try:
        from ray import tune
        resources = trial_resources(exp, ray.cluster_resources())
        if "gpu" in resources:   # memory-aware packing: big trials ask for a bigger share
            from ray.tune import PlacementGroupFactory
            shares = trial_gpu_shares(exp, todo, gpu_memory_bytes())
            cpus = resources["cpu"]
            resources = lambda config: PlacementGroupFactory(   # noqa: E731
                [{"CPU": cpus, "GPU": shares[config["trial"]["trial_id"]]}])
        recorder, progress = _callbacks({t.id: t for t in todo}, runs, label, len(todo))
        trainable = tune.with_resources(tune.with_parameters(run_one, experiment=exp_dict), resources)
        storage = os.environ.get("HARNESS_RAY_STORAGE") or str(Path.cwd() / ".ray_results")
        name_of = lambda t: t.config["trial"]["trial_id"]   # noqa: E731
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search([_trial_config(t, exp.resources.cpus_per_trial) for t in todo])},
            tune_config=tune.TuneConfig(trial_name_creator=name_of, trial_dirname_creator=name_of,
                                        reuse_actors=True),
            run_config=tune.RunConfig(
                name=f"{sweep}-{shard_label.replace('/', 'of')}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=storage, verbose=0, callbacks=[recorder, progress],
                failure_config=tune.FailureConfig(max_failures=exp.resources.max_failures)))
        tuner.fit()
    finally:
        ray.shutdown()


def _aggregate(client, exp_id: str, parent_id: str, exp: Experiment, trials: list[Trial], n: int) -> bool:
    """Success counts onto the parent; with shards, study-wide counts too once all are done."""
    from . import tracking
    df = tracking.runs_frame(tracking.children(client, exp_id, parent_id))
    tracking.aggregate_onto_parent(client, parent_id, df, exp.thresholds, exp.objectives)
    done = set(df.loc[df["status"].isin(["ok", "diverged", "collapsed", "failed"]), "trial_id"]) if len(df) else set()
    complete = all(t.id in done for t in trials)
    if n > 1 and complete:
        every = tracking.runs_frame(tracking.children(client, exp_id))
        if len(every) and set(t.id for t in exp.trials()) <= set(every["trial_id"]):
            tracking.aggregate_onto_parent(client, parent_id, every, exp.thresholds, exp.objectives, prefix="study/")
    return complete
