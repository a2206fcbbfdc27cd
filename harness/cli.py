"""One entry point: python -m harness {list,space,train,evaluator,sweep,report,pairs,store,ui,bench}.

Argument parsing and dispatch only. Bad input (an unknown name, a malformed experiment
file, a missing dataset) is an `errors.UserError`: it exits with status 2 and a message
naming the offending field, and nothing is trained or logged. Commands import their
modules when they run, so `list` does not start Ray and `train` does not load MLflow.
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import UserError


def cmd_list(args):
    from pathlib import Path

    from . import plugins
    plugins.load_all(args.plugin or [], Path.cwd(), where="--plugin")   # their names are listed like built-ins
    from .data import DATASETS
    from .evaluate import EVALUATORS
    from .objectives import OBJECTIVES
    from .space import PRESETS
    if args.what == "objectives":
        for name, cls in sorted(OBJECTIVES.items()):
            s = cls.defaults
            print(f"{name:16s} {s.optimizer} lr_g {s.lr_g:g} lr_d {s.lr_d:g} n_critic {s.n_critic} "
                  f"D norm {s.d_norm}{' + spectral' if s.spectral_norm else ''}"
                  f"{f' clip {s.clip:g}' if s.clip else ''}{f' gp {s.gp_weight:g}' if s.gp_weight else ''}")
        from dataclasses import fields
        from .objectives.base import FAMILY_SETTINGS
        settings = [f.name for f in fields(next(iter(OBJECTIVES.values())).defaults)]
        only = "; ".join(f"{k}: {', '.join(sorted(n for n, c in OBJECTIVES.items() if k in c.reads))} only"
                         for k in sorted(FAMILY_SETTINGS))
        print(f"\nMethods: OBJECTIVE[@SETTING=VALUE]...[+REMEDY[:ARG]]...[+PENALTY[:WEIGHT]]..., e.g.\n"
              f"gan-minimax@n_critic=25+pack:2 or gan+r1:10;\nsettings: {', '.join(settings)} ({only});\n"
              f"list remedies and list penalties for the parts after '+'")
    elif args.what == "penalties":
        from .penalties import PENALTIES
        for name, cls in sorted(PENALTIES.items()):
            print(f"{name}:{cls.arg_name.split(',')[0]} (default {cls.default:g}; {cls.arg_name})\n"
                  f"    {cls.summary} [{cls.source}]")
    elif args.what == "remedies":
        from .remedies import REMEDIES
        for name, cls in sorted(REMEDIES.items()):
            arg = f":{cls.arg_name.split(',')[0]} (default {cls.default:g}; {cls.arg_name})" if cls.arg_name else ""
            print(f"{name}{arg}\n    {cls.summary} [{cls.source}]")
    elif args.what == "datasets":
        for name, spec in sorted(DATASETS.items()):
            print(f"{name:14s} {spec.kind:6s} {spec.description}")
    elif args.what == "evaluators":
        for name, entry in sorted(EVALUATORS.items()):
            print(f"{name:18s} {entry.description}")
    else:
        for name, arch in PRESETS.items():
            print(f"{name:20s} {arch.id}  {json.dumps({k: v for k, v in arch.to_dict().items() if k != 'preset'})}")


def cmd_space(args):
    from .space import enumerate_space, sample_space
    for arch in enumerate_space() if args.all else sample_space(args.sample, args.seed):
        print(json.dumps({"id": arch.id, **arch.to_dict()}))


def cmd_train(args):
    from .config import load_experiment
    from .objectives import get_objective
    from .record import FAILED
    from .space import resolve_arch
    from .train import run_trial
    from .trial import Trial
    # the overrides go through the file's own checks (a bad --device or --iterations names its field)
    overrides = {"budget.iterations": args.iterations, "train.device": args.device}
    exp = load_experiment(args.experiment, {k: v for k, v in overrides.items() if v is not None})
    objective = args.objective or exp.objectives[0]
    get_objective(objective)  # an unknown name stops here, listing the valid ones
    trial = Trial(exp, resolve_arch(args.arch) if args.arch else exp.archs()[0], objective, args.seed)
    from .memory import check_machine
    check_machine(exp, [trial])   # its memory against this machine
    print(f"trial {trial.id}: {trial.arch.describe()} / {trial.objective} / seed {trial.seed} on {exp.dataset}, "
          f"{exp.budget.iterations} generator iterations", file=sys.stderr)
    record = run_trial(trial, progress=True)
    summary = {"trial_id": record.trial_id, "status": record.status, "iterations": record.iterations,
               **{k: round(v, 2) for k, v in record.summary().items()}, "headline": record.headline,
               **record.metrics}
    if record.error:
        summary["error"] = record.error.splitlines()[0]
    print(json.dumps(summary, indent=2))
    if args.samples and record.samples is not None:
        from .plots import save_samples
        save_samples(record.samples, args.samples)
        print(f"samples written to {args.samples}", file=sys.stderr)
    return 0 if record.status != FAILED else 1


def cmd_evaluator(args):
    from .evaluate import check_classifier, train_classifier
    figures = train_classifier(args.dataset, seed=args.seed) if args.action == "train" else \
        check_classifier(args.dataset, record=args.record)
    print(json.dumps(figures, indent=2))


def cmd_sweep(args):
    """Run the sweep, then write its report, so results/NAME/ always shows the sweep just run
    (a report left from an earlier sweep of the same name would mislead)."""
    from .study.sweep.driver import run_sweep
    rc = run_sweep(args.experiment, name=args.name, resume=args.resume, shard=args.shard, dry_run=args.dry_run)
    if args.dry_run or args.no_report or rc not in (0, 1):
        return rc
    from .config import load_experiment
    from .hints import harness_command
    name = args.name or load_experiment(args.experiment).name
    try:
        md = write_report(name, args.out)
    except Exception as err:   # the trials are recorded: a report bug must not read as a lost sweep
        import traceback
        traceback.print_exc()
        print(f"the sweep's trials are recorded in the store, but its report failed ({type(err).__name__}: {err}); "
              f"rebuild it with: {harness_command('report', name)}", file=sys.stderr)
        return 1
    print(f"report: {md.with_suffix('.html')} (and {md.name}, trials.csv, plots/); "
          f"rebuild it with: {harness_command('report', name)}", file=sys.stderr)
    return rc


def write_report(name: str, out_root: str, primary: list[str] | None = None):
    """results/NAME/ from the store, then the same report onto the sweep's parent runs in
    MLflow (description = the answer; artifacts report/), so the UI shows what results/ does.
    primary: `--primary` values, a comparison declared after the fact (study/primary.py)."""
    from .study.report.build import build_report
    from .study.report.publish import publish_report
    from .study.store import get_client
    md = build_report(name, out_root=out_root, primary=primary)
    publish_report(get_client(), name, md.parent)
    return md


def cmd_report(args):
    from .study.sweep_plugins import load_for_sweep
    from .study.store import get_client, latest_sweep
    name = args.name or latest_sweep(get_client())
    load_for_sweep(get_client(), name, args.plugin)   # the sweep's own names (objectives, metrics) resolve
    md = write_report(name, args.out, args.primary)
    print(f"report written to {md} and {md.with_suffix('.html')}")


def cmd_store(args):
    from pathlib import Path

    from .study.carry import copy_store, export_store, import_store
    if args.action == "export":
        done = export_store(args.name, Path(args.folder))
        print(f"exported sweep {done['sweep']}: {done['runs']} runs (+{done['trashed']} in the trash), the "
              f"checkpoints of {len(done['checkpoints'])} unfinished trials -> {done['folder']}")
    elif args.action == "import":
        done = import_store(Path(args.folder), artifact_location=args.artifacts,
                            checkpoints_root=args.checkpoints and Path(args.checkpoints))
        print(f"imported sweep {done['sweep']} into {done['store']}: {done['runs']} runs (+{done['trashed']} in "
              f"the trash), artifacts {done['artifacts']}, {len(done['checkpoints'])} checkpoints; "
              "continue with: python -m harness sweep FILE --resume")
    else:
        done = copy_store(args.name, args.to, from_uri=args.from_uri, artifact_location=args.artifacts)
        print(f"copied sweep {done['sweep']} to {done['to']}: {done['runs']} runs (+{done['trashed']} in the trash)")


def cmd_pairs(args):
    from pathlib import Path

    from .study.reanalyse import pairs_text
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()] if args.objectives else None
    print(pairs_text(Path(args.trials_csv), args.threshold, objectives, args.rule, args.primary))


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1 (argparse turns the ValueError into exit 2)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def cmd_ui(args):
    from .study.ui import launch_ui
    workers = {} if args.workers is None else {"workers": args.workers}   # None: harness/study/ui.py's UI_WORKERS
    return launch_ui(host=args.host, port=args.port, read_only=args.read_only, **workers)


def cmd_bench(args):
    if args.only == "dry-run-check":     # prices studies: the study layer's (study/sweep/dry_run_check.py)
        from .study.sweep.dry_run_check import run_dry_run_check
        return run_dry_run_check(out_dir=args.out)
    from .bench import run_bench
    return run_bench(quick=args.quick, out_dir=args.out, only=args.only)


def add_pairs_parser(sub) -> None:
    q = sub.add_parser("pairs", help="success counts and McNemar pair tests (raw and Holm) from a trials.csv",
                       description="Holm adjusts over the family asked for: every pair of the objectives compared "
                       "at every --threshold given (docs/statistics.md). The csv is checked first: a trial named "
                       "twice, a text or infinite score, or a missing one where the outcome counts it, is refused "
                       "with its row and column.")
    q.add_argument("trials_csv")
    q.add_argument("--threshold", type=float, action="append", required=True,
                   help="success threshold in the headline metric's units (repeat for several: each one joins "
                   "the family Holm adjusts over)")
    q.add_argument("--objectives", help="comma-separated subset to compare (default: all in the file); "
                   "Holm then adjusts over the subset's pairs only")
    q.add_argument("--rule", choices=["paper", "strict"], default="paper")
    q.add_argument("--primary", action="append", metavar="A,B[@THRESHOLD]",
                   help="the comparison a study stored without `primary:` was built for, declared after the fact "
                   "and tested alone first (repeatable, one threshold for all; no @: the score itself); "
                   "THRESHOLD one of --threshold")
    q.set_defaults(func=cmd_pairs)


def add_store_parser(sub) -> None:
    q = sub.add_parser(
        "store", help="carry a sweep (runs, artifacts, checkpoints) between MLflow stores and machines",
        description="Copies go through MLflow's client API, so any backend works at either end: an sqlite file "
        "(sqlite:///PATH), an `mlflow server` (http://HOST:PORT), PostgreSQL (postgresql+psycopg2://...; "
        "pip install -e .[team]). The sweep is read from / written to MLFLOW_TRACKING_URI unless said otherwise. "
        "Runs keep params, tags, metric histories, statuses, start and end times, artifacts and parent links; "
        "trashed runs stay trashed; run ids are new (MLflow picks them). The target must not hold a sweep of "
        "that name. See docs/team.md.")
    acts = q.add_subparsers(dest="action", required=True)
    e = acts.add_parser("export", help="write sweep NAME (from MLFLOW_TRACKING_URI) to FOLDER, with the "
                        "checkpoints of its unfinished trials (replacing an earlier export)")
    e.add_argument("name")
    e.add_argument("folder")
    i = acts.add_parser("import", help="copy the sweep of an exported FOLDER into MLFLOW_TRACKING_URI (a new "
                        "sqlite file, an existing store or a server); the folder is checked whole first and "
                        "treated as untrusted (ids, symlinks, sizes)")
    i.add_argument("folder")
    i.add_argument("--artifacts", help="the sweep's artifact location, a new folder or URI (default: the "
                   "store's: ./mlruns/EXPERIMENT_ID for an sqlite file, the server's artifact root)")
    i.add_argument("--checkpoints", help="where unfinished trials' checkpoints go, one folder per run "
                   "(default ./.ray_results/carried); `sweep --resume` continues from them")
    c = acts.add_parser("copy", help="copy sweep NAME to another store, e.g. a local sweep to the team's "
                        "server: store copy NAME --to http://HOST:5000 (checkpoints stay where they are)")
    c.add_argument("name")
    c.add_argument("--to", required=True, metavar="URI", help="the tracking URI to copy to")
    c.add_argument("--from", dest="from_uri", metavar="URI", help="the tracking URI to copy from "
                   "(default MLFLOW_TRACKING_URI)")
    c.add_argument("--artifacts", help="the copy's artifact location (default: the target store's)")
    q.set_defaults(func=cmd_store)


def add_sweep_parsers(sub) -> None:
    """sweep, and report (which a sweep runs at its end)."""
    q = sub.add_parser("sweep", help="run an experiment's trials with Ray Tune, tracked in MLflow")
    q.add_argument("experiment")
    q.add_argument("--name", help="sweep name (default: the experiment's name)")
    q.add_argument("--resume", action="store_true", help="continue a killed sweep of the same name")
    q.add_argument("--shard", help="I/N: run only the I-th of N deterministic shares of the trials")
    q.add_argument("--dry-run", action="store_true",
                   help="check everything, print each trial's settings and an estimated cost; "
                   "no store, no Ray; lists what its checks cached")
    q.add_argument("--out", default="results", help="where the sweep's report goes (default results/NAME/)")
    q.add_argument("--no-report", action="store_true", help="do not write the report when the sweep ends")
    q.set_defaults(func=cmd_sweep)

    q = sub.add_parser("report", help="write results/NAME/ from the MLflow store (default: the latest sweep)")
    q.add_argument("name", nargs="?", help="sweep name (default: the sweep that started last in the store)")
    q.add_argument("--out", default="results")
    q.add_argument("--plugin", action="append", metavar="PATH_OR_MODULE",
                   help="the sweep's plugins, where they are not found beside its experiment file (repeatable)")
    q.add_argument("--primary", action="append", metavar="A,B[@THRESHOLD]",
                   help="the comparison a study stored without `primary:` was built for, declared after the fact "
                   "and tested alone first (repeatable, one threshold for all; no @: the score itself); "
                   "THRESHOLD as the experiment writes its thresholds (a fraction of real where they are relative)")
    q.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    from .hints import harness_command
    p = argparse.ArgumentParser(prog=harness_command(), description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("list", help="list objectives, remedies, penalties, datasets, evaluators or presets")
    q.add_argument("what", choices=["objectives", "remedies", "penalties", "datasets", "evaluators", "presets"])
    q.add_argument("--plugin", action="append", metavar="PATH_OR_MODULE",
                   help="import a plugin first (a .py file or package folder, or a module name; repeatable), "
                        "as an experiment's plugins: list does; its names are listed with the built-ins")
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("space", help="print architectures of the space, one JSON line each")
    q.add_argument("--sample", type=int, default=10)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--all", action="store_true", help="every point of the grid (9,216)")
    q.set_defaults(func=cmd_space)

    q = sub.add_parser("train", help="run one trial without Ray and print its metrics")
    q.add_argument("experiment")
    q.add_argument("--arch", help="architecture id or preset name (default: the experiment's first)")
    q.add_argument("--objective", help="objective name (default: the experiment's first)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--iterations", type=int, help="override budget.iterations")
    q.add_argument("--device", help="override train.device (cpu, cuda, cuda:N)")
    q.add_argument("--samples", help="write a PNG of final samples here")
    q.set_defaults(func=cmd_train)

    q = sub.add_parser("evaluator", help="train or check the shipped domain classifier")
    q.add_argument("action", choices=["train", "check"])
    q.add_argument("dataset")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--record", action="store_true",
                   help="check: write the figures into the shipped JSON (default: print only)")
    q.set_defaults(func=cmd_evaluator)

    add_sweep_parsers(sub)
    add_pairs_parser(sub)
    add_store_parser(sub)
    q = sub.add_parser("ui", help="MLflow UI on the project's store (127.0.0.1)")
    q.add_argument("--host", default="127.0.0.1")
    q.add_argument("--port", type=int, default=5000)
    q.add_argument("--read-only", action="store_true",
                   help="serve a snapshot copy of the sqlite store: nothing done in the UI reaches the study")
    q.add_argument("--workers", type=positive_int, default=None,
                   help="server processes (default 1: one person's UI; MLflow's own default is 4)")
    q.set_defaults(func=cmd_ui)

    q = sub.add_parser("bench", help="measure trial speed against a plain PyTorch loop")
    q.add_argument("--quick", action="store_true", help="reduced version (CPU, CI)")
    q.add_argument("--out", default="results/bench")
    q.add_argument("--only", choices=["cpu-speed", "w1-solver", "profile", "penalty-precision", "dry-run-check"], default=None,
                   help="cpu-speed: only the real-size CPU section (fp32 / bf16 paths, matmul rates, checkpoint cost); "
                        "w1-solver: the 2D evaluator's exact W1, scipy's assignment vs POT's simplex; "
                        "profile: where a CPU iteration's time goes (torch.profiler) and the levers it names; "
                        "penalty-precision: the penalty's double backward in bf16 against fp32 (numbers, a trained run); "
                        "dry-run-check: the dry run's price of each committed study against its measured trial times")
    q.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
