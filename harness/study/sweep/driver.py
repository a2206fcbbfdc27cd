"""Run (or resume) a sweep: check everything, then take the sweep's lease, start Ray, write to MLflow, fit.

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

Order of work: every check that can refuse and only reads (the file, the data, the
evaluator, this machine's CPUs, the store's state) runs before anything is written and
before a local Ray starts, so a refused command costs seconds, not a Ray start-up. Then
the sweep takes its shard's lease (one driver at a time, lease.py; a second is refused,
naming the first), checks the store again under it, starts Ray and writes.

Stopping: SIGINT and SIGTERM (Ctrl-C; a scheduler, `timeout`, `kill`) stop a sweep the
same way: Tune stops the trials, the open child runs and the parent end KILLED, no "done"
line, exit status 130 / 143 (128 + the signal), and --resume continues. A failure after
the trials ran (aggregating them) ends the parent FAILED with every record kept: --resume
(nothing left to train) aggregates again, and `report` rebuilds from the child runs.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import pandas as pd

from ...config import Experiment, check_name, experiment_diff, load_experiment
from ...data import get_dataset_spec, load_images
from ...errors import DatasetNotFound, UsageError
from ...hints import harness_command
from ...trial import Trial, make_evaluator, real_data_score, trials_of
from .. import results, store
from ..report.publish import describe_experiment
from .aggregate import aggregate_onto_parent
from .callbacks import ProgressLine, Recorder, SweepClock, TrialStates, trial_dirname_of, trial_id_of
from .lease import Lease
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


def local_resources() -> dict:
    """What a private local Ray offers, read from this machine without starting one:
    HARNESS_RAY_NUM_CPUS, else the CPUs this process may use as Ray counts them (cgroup quotas
    included); the GPUs torch sees (CUDA_VISIBLE_DEVICES honoured). start_ray gives Ray these
    figures, so what was checked is what runs."""
    text = os.environ.get("HARNESS_RAY_NUM_CPUS")
    if text:
        try:
            cpus = int(text)
        except ValueError:
            cpus = 0
        if cpus < 1:
            raise UsageError(f"HARNESS_RAY_NUM_CPUS: expected a whole number of CPUs >= 1, got {text!r}")
    else:
        try:
            from ray._private.utils import get_num_cpus   # Ray's own count, what ray.init would use
            cpus = int(get_num_cpus())
        except Exception:  # noqa: BLE001 - a Ray without it: the CPUs this process may run on
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    import torch
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"CPU": float(cpus), **({"GPU": float(gpus)} if gpus else {})}


class LocalRay:
    """A private local Ray: shutting it down also removes its temp folder."""

    def __init__(self, ray, temp_dir: str):
        self.ray, self.temp_dir = ray, temp_dir

    def cluster_resources(self) -> dict:
        return self.ray.cluster_resources()

    def alive(self) -> bool:
        """Whether its GCS and raylet still run: a SIGTERM to the sweep's process group (`timeout`,
        a batch scheduler) reaches them too, and then nothing Tune asks of Ray returns."""
        node = getattr(self.ray._private.worker, "_global_node", None)
        if node is None:
            return True
        return all(info.process.poll() is None for kind in ("gcs_server", "raylet")
                   for info in node.all_processes.get(kind, []))

    def shutdown(self) -> None:
        self.ray.shutdown()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _quiet_ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")   # MLflow holds the results
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from ... import plugins   # the experiment's plugins reach every worker, local or on a cluster
    env = plugins.runtime_env()
    return ray, dict(logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False,
                     **({"runtime_env": env} if env else {}))


def join_cluster():
    """RAY_ADDRESS's cluster, joined (not started): the sweep runs there."""
    ray, kwargs = _quiet_ray()
    ray.init(address=os.environ["RAY_ADDRESS"], **kwargs)
    return ray


def start_ray(cluster: dict | None):
    """Join RAY_ADDRESS's cluster if set, else start a private local Ray with `cluster`'s CPUs
    and GPUs; quiet either way. The local one has its own temp folder (sockets, logs, session
    files), ports of its own choosing, and never joins another: Ray processes a `kill -9`ed sweep left
    behind, or another user's Ray on this machine, are not in its way."""
    if os.environ.get("RAY_ADDRESS"):
        return join_cluster()
    ray, kwargs = _quiet_ray()
    temp = tempfile.mkdtemp(prefix="ray-harness-", dir="/tmp" if os.path.isdir("/tmp") else None)  # short: socket paths
    try:
        ray.init(address="local", num_cpus=int(cluster["CPU"]), num_gpus=int(cluster.get("GPU", 0)),
                 _temp_dir=temp, **kwargs)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):   # ray.init may have reset them
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return LocalRay(ray, temp)


STOP_GRACE_S = 30.0   # how long a stopping sweep waits for Tune to stop its trials, Ray alive
RAY_GONE_GRACE_S = 3.0  # ... and for its own main thread, once Ray's processes are gone


class StopSignals:
    """SIGINT and SIGTERM stop a sweep the same way. Why: a scheduler, `timeout` and `kill`
    send SIGTERM, which Ray's own handler turned into an abort (exit 134) that left the
    parent and the child runs RUNNING. While Tune's loop runs, the first signal asks Tune to
    stop (its own interrupt, SIGUSR1's handler: the trials stop and the loop returns);
    elsewhere, or at a second signal, it raises KeyboardInterrupt. Once the sweep records its
    end, further signals wait for that (SIGKILL does not). `received`: the first signal.

    A watchdog covers the case where the main thread cannot get there: a signal sent to the
    whole process group (`timeout`, a batch scheduler) stops Ray's GCS and raylet too, and
    Tune's stop then waits on them until Ray's core worker ends the process. When Ray's
    processes are gone (RAY_GONE_GRACE_S), or Tune has not stopped within STOP_GRACE_S,
    `force(signum)` records the sweep's end from the watchdog's thread and exits."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self.in_fit = False
        self.closing = False
        self.lease_lost = False
        self.saved: dict = {}
        self.finished = threading.Event()      # set when run_sweep has nothing left to do
        self.force = None                      # force(signum): record the end and exit the process
        self.ray_alive = lambda: True

    def __getstate__(self):
        """Tune pickles its callbacks (for Tuner.restore, which sweeps do not use): the flags only."""
        return {"received": self.received, "in_fit": self.in_fit, "closing": self.closing,
                "lease_lost": self.lease_lost}

    def __setstate__(self, state):
        self.__init__()
        self.__dict__.update(state)

    def install(self) -> None:
        """(Again) this object's handler for both signals; the first call saves the handlers it replaces."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.SIGNALS:
            previous = signal.signal(sig, self.handle)
            self.saved.setdefault(sig, previous)

    def restore(self) -> None:
        """The handlers from before the sweep (a caller running sweeps in-process keeps its own)."""
        if threading.current_thread() is threading.main_thread():
            for sig, handler in self.saved.items():
                signal.signal(sig, handler)

    def handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.closing:
            print(f"{name}: recording the sweep's end first (SIGKILL stops it at once)", file=sys.stderr, flush=True)
            return
        first = self.received is None
        if first:
            self.received = signum
            print(f"{name}: stopping the sweep; the trials it recorded are kept and --resume continues the others",
                  file=sys.stderr, flush=True)
            if self.force is not None:
                threading.Thread(target=self._watch, args=(signum,), name="sweep-stop", daemon=True).start()
        tune_stop = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
        if first and self.in_fit and callable(tune_stop):
            tune_stop(signal.SIGUSR1, frame)
            return
        raise KeyboardInterrupt

    def _watch(self, signum: int) -> None:
        start, gone = time.monotonic(), None
        while not self.finished.wait(0.5):
            now = time.monotonic()
            if gone is None and not self.ray_alive():
                gone = now
            if now - start > STOP_GRACE_S or (gone is not None and now - gone > RAY_GONE_GRACE_S):
                why = "Ray's processes were stopped too" if gone is not None else \
                    f"Tune did not stop within {STOP_GRACE_S:g} s"
                print(f"{signal.Signals(signum).name}: {why}; recording the sweep's end without it", file=sys.stderr,
                      flush=True)
                self.force(signum)
                return

    def lose_lease(self) -> None:
        """From the lease's thread: another driver took the sweep over; stop this one."""
        import _thread
        self.lease_lost = True
        _thread.interrupt_main(signal.SIGTERM)


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
    """Run (or resume) a sweep: 0 when every trial of the shard has a recorded outcome, 1 when
    some has none or aggregating failed, 128 + N when signal N stopped it.
    With dry_run: the same checks, then each trial's settings and a price (dry_run_sweep)."""
    started = time.monotonic()
    i, n = parse_shard(shard)
    if name is not None:
        check_name(name, "--name")
    if dry_run:
        return dry_run_sweep(experiment_path, i, n)
    exp = check_inputs(experiment_path)
    sweep, shard_label = name or exp.name, f"{i}/{n}"
    label = sweep if n == 1 else f"{sweep} {shard_label}"
    trials, exp_dict = shard_trials(trials_of(exp), i, n), exp.to_dict()
    # ---- read-only refusals: nothing written, no Ray started ----
    cluster = None if os.environ.get("RAY_ADDRESS") else local_resources()
    if cluster is not None:
        ray_resources(exp, trials, cluster)
    client = store.get_client() if store.store_exists() else None   # a store not made yet has nothing to refuse
    if client is not None:
        find_parent(client, sweep, shard_label, exp_dict, experiment_path, resume)
    real_score = real_data_score(exp) if exp.thresholds_relative else None
    thresholds = results.absolute_thresholds(exp.thresholds, exp.thresholds_relative, real_score)
    if real_score is not None:
        print(f"[{label}] real data's score {real_score:.4g}: thresholds {thresholds}", file=sys.stderr)

    stop = StopSignals()
    stop.install()
    try:
        client = store.retrying(client or store.get_client())
        exp_id = store.open_experiment(client, sweep)   # ---- first write ----
        lease = Lease(client, exp_id, sweep, shard_label).acquire()   # or refuse: another driver runs it
    except BaseException:
        stop.restore()
        raise
    lease.on_lost = stop.lose_lease
    ray, state, ending = None, {"status": "FAILED", "failure": None, "close": None}, threading.Lock()
    resume_cmd = harness_command("sweep", str(experiment_path), *(["--name", name] if name else []),
                                 *(["--shard", shard_label] if n > 1 else []), "--resume")

    def end_once() -> None:
        """The sweep run's end, once: by the main thread, or by the stop watchdog if it is stuck."""
        with ending:
            if state["close"] is not None:
                state["status"], state["failure"] = state["close"]()
                state["close"] = None

    def force(signum: int) -> None:
        end_once()
        lease.release()
        if isinstance(ray, LocalRay):
            shutil.rmtree(ray.temp_dir, ignore_errors=True)
        print(f"[{label}] stopped by {signal.Signals(signum).name}; continue with: {resume_cmd}", file=sys.stderr,
              flush=True)
        os._exit(128 + signum)

    stop.force = force
    try:
        # again, now that no other driver can change the shard's runs
        _, parent_id = find_parent(client, sweep, shard_label, exp_dict, experiment_path, resume)
        kept = store.answered_trials(client, exp_id, parent_id) if parent_id else {}
        checkpoints = store.latest_checkpoints(client, exp_id, parent_id, kept) if parent_id else {}
        todo = [t for t in trials if t.id not in kept]
        ray = start_ray(cluster) if todo else None   # a resume with nothing left to run starts no Ray
        stop.install()                          # ray.init installs a SIGTERM handler of its own
        stop.ray_alive = getattr(ray, "alive", lambda: True)
        resources = ray_resources(exp, trials, cluster or ray.cluster_resources()) if todo else None
        describe_experiment(client, exp_id, exp.description)
        parent_id = open_parent(client, exp_id, parent_id, kept, sweep, shard_label, exp_dict, len(trials),
                                str(experiment_path), real_score)
        resumed = f", {len(checkpoints)} from a checkpoint" if checkpoints else ""
        print(f"[{label}] {len(trials)} trials ({len(kept)} already done, {len(todo)} to run{resumed}); "
              f"MLflow {store.tracking_uri()}, experiment {sweep!r}, parent run {parent_id}", file=sys.stderr)
        runs = store.ChildRuns(client, exp_id, parent_id, sweep, shard_label)
        clock = functools.partial(store.log_sweep_run, client, parent_id, store.next_sweep_run(client, parent_id))
        state["status"] = "KILLED"              # until fit returns: what a forced end records
        state["close"] = lambda: close(client, exp_id, parent_id, runs, exp, thresholds, trials, n, state["status"],
                                       stop, lambda: clock(time.monotonic() - started))
        try:
            if todo:
                fit(exp, exp_dict, pairs_first(exp, todo), resources, runs, label, f"{sweep}-{i}of{n}", checkpoints,
                    SweepClock(clock, started), stop)
            state["status"] = "FINISHED"
        except KeyboardInterrupt:
            state["status"] = "KILLED"          # a signal outside Tune's loop, or a second one
        except BaseException:
            state["status"] = "FAILED"
            raise
        finally:
            stop.closing = True
            end_once()
    except KeyboardInterrupt:                   # a signal before the trials started
        state["status"] = "KILLED"
    finally:
        stop.closing = True
        try:
            lease.release()
            if ray is not None:
                ray.shutdown()
        finally:
            stop.restore()
            stop.finished.set()
    status, failure = state["status"], state["failure"]
    if stop.lease_lost:
        print(f"[{label}] stopped: another driver took the sweep over", file=sys.stderr)
        return 1
    if stop.received:
        print(f"[{label}] stopped by {signal.Signals(stop.received).name} (recorded trials kept, unfinished ones "
              f"marked KILLED); continue with: {resume_cmd}", file=sys.stderr)
        return 128 + stop.received
    if failure:
        print(f"[{label}] the trials are recorded, but {failure} failed (above); the parent run is marked FAILED. "
              f"`{resume_cmd}` does it again without rerunning a trial, and "
              f"`{harness_command('report', sweep)}` rebuilds the report from the trials", file=sys.stderr)
        return 1
    print(f"[{label}] done; report: {harness_command('report', sweep)}", file=sys.stderr)
    return 0 if status == "FINISHED" else 1


def close(client, exp_id: str, parent_id: str, runs, exp: Experiment, thresholds, trials: list[Trial], n: int,
          status: str, stop: StopSignals, log_clock) -> tuple[str, str | None]:
    """The sweep run's end, whatever stopped it: open child runs ended KILLED, the counts
    aggregated onto the parent, its wall time logged, the parent ended. Each step is tried
    even if one before it failed, so a crash in aggregation cannot leave the parent RUNNING.
    Returns (the parent's status, what failed or None)."""
    failure = None
    if stop.lease_lost:                          # the shard is another driver's now: only our own runs
        _attempt("end the open trials", lambda: runs.abort_all("KILLED"))
        return "KILLED", None
    _attempt("end the open trials", lambda: runs.abort_all("KILLED"))
    complete = False
    try:
        complete = aggregate(client, exp_id, parent_id, exp, thresholds, trials, n)
    except Exception:  # noqa: BLE001 - the records are in; --resume aggregates again
        traceback.print_exc()
        failure = "aggregating them"
    if stop.received:
        status = "KILLED"
    elif failure:
        status = "FAILED"
    elif status == "FINISHED" and not complete:
        status = "KILLED"                       # a trial without a record: --resume runs it
    _attempt("log the sweep's wall time", log_clock)
    _attempt("end the parent run", lambda: store.end_run(client, parent_id, status))
    return status, failure


def _attempt(what: str, step) -> None:
    try:
        step()
    except Exception as err:  # noqa: BLE001 - the other steps of the sweep's end still run
        print(f"could not {what}: {type(err).__name__}: {err}", file=sys.stderr)


def dry_run_sweep(experiment_path: str | Path, i: int, n: int) -> int:
    """--dry-run: the checks a sweep makes, each trial's settings and a price. It opens no
    store and starts no Ray (the resources are this machine's, or RAY_ADDRESS's cluster's,
    joined and left); the only files it writes are what the checks cache for the sweep to
    reuse (a dataset downloaded, weights, real features), which it lists on stderr."""
    from .cache_watch import cache_roots, describe, snapshot, written
    from .dry_run import dry_run as price
    roots = cache_roots(load_experiment(experiment_path).data.root)
    before = snapshot(roots)
    exp = check_inputs(experiment_path)
    trials = shard_trials(trials_of(exp), i, n)
    if os.environ.get("RAY_ADDRESS"):
        ray = join_cluster()
        try:
            cluster = ray.cluster_resources()
        finally:
            ray.shutdown()
    else:
        cluster = local_resources()
    resources = ray_resources(exp, trials, cluster)
    real_score = real_data_score(exp) if exp.thresholds_relative else None
    thresholds = results.absolute_thresholds(exp.thresholds, exp.thresholds_relative, real_score)
    if real_score is not None:
        print(f"[{exp.name}] real data's score {real_score:.4g}: thresholds {thresholds}", file=sys.stderr)
    price(exp, trials, resources, cluster, thresholds, out=sys.stdout)
    print(f"dry run: no MLflow store opened, no Ray started; the checks {describe(written(before, snapshot(roots)))}",
          file=sys.stderr)
    return 0


def fit(exp: Experiment, exp_dict: dict, todo: list[Trial], resources, runs, label: str, run_name: str,
        checkpoints: dict[str, dict], clock: SweepClock, stop: StopSignals | None = None) -> None:
    """One Tune experiment over `todo`, recorded into `runs` as it goes; trials in
    `checkpoints` (trial id -> {"path", "iteration"}) continue from that checkpoint. Tune
    keeps each trial's latest checkpoint (and restores it when it retries a trial). Tune's
    own SIGINT handler is off: `stop` takes SIGINT and SIGTERM and stops Tune's loop alike."""
    from ray import tune
    stop = stop or StopSignals()
    states = TrialStates({t.id: t.objective for t in todo}, past_wall_times(runs), exp.budget.iterations)
    callbacks = [Recorder({t.id: t for t in todo}, runs, states, exp.train.keep_checkpoints,
                          stopping=lambda: stop.received is not None),
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
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    stop.install()
    stop.in_fit = True
    try:
        tuner.fit()
    finally:
        stop.in_fit = False
        stop.install()                           # Tune leaves its SIGUSR1 handler behind


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
