"""Run (or resume) a sweep: check everything, then start Ray, then write to MLflow, then fit.

One Tune trial per (architecture, objective, seed). The same experiment file runs
anywhere: a machine without GPUs runs one trial per `cpus_per_trial` cores; with GPUs
each trial asks for a share of one (plan.py); with RAY_ADDRESS set the sweep joins that
Ray cluster instead of starting one.

Failure policy: a trial that raises is retried `max_failures` times by Tune, then recorded
failed and the sweep goes on. Diverged and collapsed trials are results, not failures.

Resume and shards rely on MLflow, not on Tune's experiment state: --resume keeps the
trials the shard's parent run already answered (ok / diverged / collapsed) and runs a
fresh Tune experiment over the others (failed ones included), after checking that the
experiment file is unchanged. Each shard has its own parent run; the report merges them.

Order of work: every check that can refuse (the file, the data, the evaluator, the
cluster's CPUs, the store's state) runs before the first write to the store.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd

from ...config import Experiment, check_name, experiment_diff, load_experiment
from ...data import get_dataset_spec, load_images
from ...errors import DatasetNotFound, UsageError
from ...trial import Trial, make_evaluator, real_data_score, trials_of
from .. import results, store
from ..report.publish import describe_experiment
from .aggregate import aggregate_onto_parent
from .callbacks import ProgressLine, Recorder, SweepClock, TrialStates, trial_dirname_of, trial_id_of
from .plan import gpu_memory_bytes, pairs_first, parse_shard, shard_trials, trial_gpu_shares, trial_resources
from .worker import run_one, trial_config


def check_inputs(path: str | Path) -> Experiment:
    """Load and validate the experiment, and check its dataset and evaluator are usable here."""
    exp = load_experiment(path)
    if get_dataset_spec(exp.dataset).kind == "image":
        if exp.dataset == "imagenet32":   # a full read would take minutes: check the path only
            if not exp.data.path or not Path(exp.data.path).expanduser().exists():
                raise DatasetNotFound(f"data.path: imagenet32 is user-supplied; {exp.data.path!r} does not exist "
                                      "(a folder with train_data_batch_1..10 and val_data, or a .npz with x/y)")
        else:
            load_images(exp.dataset, "train", root=exp.data.root, path=exp.data.path, limit=1)
    make_evaluator(exp, "cpu")
    from ...memory import check_machine
    check_machine(exp)   # each trial's estimated peak memory against this machine's RAM / GPU (harness/memory.py)
    return exp


def start_ray():
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


def ray_resources(exp: Experiment, trials: list[Trial], cluster: dict):
    """What each trial asks Ray for: a dict, or per trial a placement group (GPU packing)."""
    resources = trial_resources(exp, cluster)
    if "gpu" not in resources:
        return resources
    from ray.tune import PlacementGroupFactory
    shares, cpus = trial_gpu_shares(exp, trials, gpu_memory_bytes()), resources["cpu"]
    return lambda config: PlacementGroupFactory([{"CPU": cpus, "GPU": shares[config["trial"]["trial_id"]]}])


def find_parent(client, sweep: str, shard: str, exp_dict: dict, path, resume: bool) -> tuple[str | None, str | None]:
    """(MLflow experiment id, this shard's parent run id), each None if absent; refuses a
    changed experiment, a different split, or an existing sweep without --resume. Read-only."""
    mlflow_exp = store.find_experiment(client, sweep)
    if mlflow_exp is None:
        return None, None
    n = shard.split("/")[1]
    parent_id = None
    for run in store.parents(client, mlflow_exp.experiment_id):
        other = run.data.tags.get("shard", "1/1")
        if other.split("/")[1] != n:
            raise UsageError(f"--shard: sweep {sweep!r} was split as {other}, not into {n} shards")
        diff = experiment_diff(store.load_experiment_dict(client, run.info.run_id), exp_dict)
        if diff:
            raise UsageError(f"experiment: {path} differs from the one sweep {sweep!r} began with "
                             f"(shard {other}): " + "; ".join(diff) + ". Use --name for a new sweep.")
        if other == shard:
            if not resume:
                raise UsageError(f"--resume: sweep {sweep!r} (shard {shard}) already exists in "
                                 f"{store.tracking_uri()}; pass --resume to continue it or --name for a new one")
            parent_id = run.info.run_id
    return mlflow_exp.experiment_id, parent_id


def open_parent(client, exp_id: str, parent_id: str | None, kept: dict, sweep: str, shard: str, exp_dict: dict,
                n_trials: int, experiment_file: str, real_score: float | None) -> str:
    """This shard's parent run: a new one, or the existing one reopened for --resume with
    its unanswered trials moved to the trash."""
    if parent_id is None:
        return store.start_parent(client, exp_id, sweep, shard, exp_dict, n_trials, experiment_file,
                                  {"real_score": real_score} if real_score is not None else None)
    store.discard_unanswered(client, exp_id, parent_id, kept)
    client.update_run(parent_id, status="RUNNING")
    store.set_tags(client, parent_id, {"resumed": time.strftime("%Y-%m-%d %H:%M:%S")})
    return parent_id


def run_sweep(experiment_path: str | Path, name: str | None = None, resume: bool = False,
              shard: str | None = None, dry_run: bool = False) -> int:
    """Run (or resume) a sweep; 0 when every trial of the shard has a recorded outcome.
    With dry_run: the same checks, then each trial's settings and a price; nothing written."""
    started = time.monotonic()
    i, n = parse_shard(shard)
    if name is not None:
        check_name(name, "--name")
    exp = check_inputs(experiment_path)
    sweep, shard_label = name or exp.name, f"{i}/{n}"
    label = sweep if n == 1 else f"{sweep} {shard_label}"
    trials, exp_dict = shard_trials(trials_of(exp), i, n), exp.to_dict()
    ray = start_ray()
    try:
        cluster = ray.cluster_resources()
        resources = ray_resources(exp, trials, cluster)
        real_score = real_data_score(exp) if exp.thresholds_relative else None
        thresholds = results.absolute_thresholds(exp.thresholds, exp.thresholds_relative, real_score)
        if real_score is not None:
            print(f"[{label}] real data's score {real_score:.4g}: thresholds {thresholds}", file=sys.stderr)
        if dry_run:
            from .dry_run import dry_run as price
            price(exp, trials, resources, cluster, thresholds)
            return 0
        client = store.get_client()
        exp_id, parent_id = find_parent(client, sweep, shard_label, exp_dict, experiment_path, resume)
        kept = store.answered_trials(client, exp_id, parent_id) if parent_id else {}
        checkpoints = store.latest_checkpoints(client, exp_id, parent_id, kept) if parent_id else {}
        # ---- first write ----
        exp_id = store.open_experiment(client, sweep)
        describe_experiment(client, exp_id, exp.description)
        parent_id = open_parent(client, exp_id, parent_id, kept, sweep, shard_label, exp_dict, len(trials),
                                str(experiment_path), real_score)
        todo = [t for t in trials if t.id not in kept]
        resumed = f", {len(checkpoints)} from a checkpoint" if checkpoints else ""
        print(f"[{label}] {len(trials)} trials ({len(kept)} already done, {len(todo)} to run{resumed}); "
              f"MLflow {store.tracking_uri()}, experiment {sweep!r}, parent run {parent_id}", file=sys.stderr)
        runs = store.ChildRuns(client, exp_id, parent_id, sweep, shard_label)
        clock = functools.partial(store.log_sweep_run, client, parent_id, store.next_sweep_run(client, parent_id))
        status = "FAILED"
        try:
            if todo:
                fit(exp, exp_dict, pairs_first(exp, todo), resources, runs, label, f"{sweep}-{i}of{n}", checkpoints,
                    SweepClock(clock, started))
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            runs.abort_all("KILLED")
            complete = aggregate(client, exp_id, parent_id, exp, thresholds, trials, n)
            if status == "FINISHED" and not complete:
                status = "KILLED"   # Tune stopped early (Ctrl-C): --resume continues
            clock(time.monotonic() - started)
            store.end_run(client, parent_id, status)
    finally:
        ray.shutdown()
    print(f"[{label}] done; report: python -m harness report {sweep}", file=sys.stderr)
    return 0 if status == "FINISHED" else 1


def fit(exp: Experiment, exp_dict: dict, todo: list[Trial], resources, runs, label: str, run_name: str,
        checkpoints: dict[str, dict], clock: SweepClock) -> None:
    """One Tune experiment over `todo`, recorded into `runs` as it goes; trials in
    `checkpoints` (trial id -> {"path", "iteration"}) continue from that checkpoint. Tune
    keeps each trial's latest checkpoint (and restores it when it retries a trial)."""
    from ray import tune
    states = TrialStates({t.id: t.objective for t in todo}, past_wall_times(runs))
    callbacks = [Recorder({t.id: t for t in todo}, runs, states, exp.train.keep_checkpoints),
                 ProgressLine(states, label, len(todo)), clock]
    trainable = tune.with_resources(tune.with_parameters(run_one, experiment=exp_dict), resources)
    storage = os.environ.get("HARNESS_RAY_STORAGE") or str(Path.cwd() / ".ray_results")
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([
            trial_config(t, exp.resources.cpus_per_trial, checkpoints.get(t.id, {}).get("path")) for t in todo])},
        tune_config=tune.TuneConfig(trial_name_creator=trial_id_of, trial_dirname_creator=trial_dirname_of,
                                    reuse_actors=True),
        run_config=tune.RunConfig(
            name=f"{run_name}-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=storage, verbose=0,
            callbacks=callbacks, checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=exp.resources.max_failures)))
    tuner.fit()


def past_wall_times(runs) -> dict[str, list[float]]:
    """Method -> wall times of the sweep's trials already recorded (every shard and earlier run):
    the progress line's estimate on --resume before this run has finished a trial."""
    df = results.with_outcome(results.frame(store.read_records(runs.client, runs.exp_id)))
    if df.empty or "wall_time_s" not in df:
        return {}
    seconds = pd.to_numeric(df["wall_time_s"], errors="coerce")
    keep = seconds.gt(0)
    return {str(k): v.tolist() for k, v in seconds[keep].groupby(df.loc[keep, "objective"])}


def aggregate(client, exp_id: str, parent_id: str, exp: Experiment, thresholds: list[float], trials: list[Trial],
              n: int) -> bool:
    """Success counts onto the parent; with shards, study-wide counts too once all are done.
    Returns whether every trial of this shard has an outcome."""
    df = results.with_outcome(results.frame(store.read_records(client, exp_id, parent_id)))
    aggregate_onto_parent(client, parent_id, df, thresholds, exp.objectives, exp.success_rule)
    done = set(df["trial_id"]) if len(df) else set()
    complete = all(t.id in done for t in trials)
    if n > 1 and complete:
        every = results.with_outcome(results.frame(store.read_records(client, exp_id)))
        if len(every) and {t.id for t in trials_of(exp)} <= set(every["trial_id"]):
            aggregate_onto_parent(client, parent_id, every, thresholds, exp.objectives, exp.success_rule,
                                  prefix="study/")
    return complete
