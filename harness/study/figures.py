"""Every committed report and pairs.md, rebuilt from the committed files and compared: `make figures`.

Each number in results/ (and the README's findings, taken from them) must come from a command
a reader can run on the committed files. This module names those commands, one per study:

- a study whose MLflow store is committed (an export folder, `python -m harness store export`):
  `store import` into a scratch store, then `report NAME --primary ...`;
- a study whose store is gone: `pairs results/NAME/trials.csv --threshold ... --primary ...`,
  at the thresholds its experiment used, written to results/NAME/pairs.md.

`--check` (what `make figures` runs) rebuilds them into a scratch folder and lists the files
that differ from the committed ones; `--write` rebuilds them onto results/ (report.html with
its images linked, not embedded: they are committed beside it). A report compares
as its text (report.md), its trials.csv and factor_tests.csv, leaving out what a rebuild
cannot reproduce: the run ids and artifact locations that every import of a store makes anew,
and the images' bytes (report.html embeds the plots, whose PNG bytes depend on the matplotlib
build).

The primary comparisons (`--primary`) are declared after the fact (study/primary.py): these
studies were stored before `primary:` existed, and each was built for the comparison named
here (results/README.md says why each). Studies built for diagnostics, not a comparison
(equilibrium-ring8, conditional-ring8), declare none: every test in their pairs.md is secondary.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import difflib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
RING = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]          # more than t of 8 modes
PACKS = ["gan,gan+pack:2", "gan,gan+pack:3", "gan,gan+pack:4"]


@dataclass(frozen=True)
class Study:
    name: str
    primary: list[str] = field(default_factory=list)    # --primary values; empty: none declared
    store: str | None = None                             # export folder under the repo; None: pairs.md only
    thresholds: list[float] = field(default_factory=list)   # pairs.md's --threshold values

    def command(self) -> str:
        """The command a reader runs (from the repository root) to rebuild this study's figures."""
        prim = "".join(f" --primary {p}" for p in self.primary)
        if self.store:   # REPO: the checkout; the scratch store and its artifacts in a fresh folder
            return (f"cd $(mktemp -d) && export MLFLOW_TRACKING_URI=sqlite:///$PWD/mlflow.db && python -m harness store "
                    f"import REPO/{self.store} && python -m harness report {self.name} --out REPO/results{prim}")
        ts = "".join(f" --threshold {t:g}" for t in self.thresholds)
        return f"python -m harness pairs results/{self.name}/trials.csv{ts}{prim} > results/{self.name}/pairs.md"


STUDIES = [
    Study("robustness-fmnist-cpu", ["gan,wgan-gp"], store="results/robustness-fmnist-cpu/store"),
    Study("mode-collapse-pacgan-ring8", PACKS, store="results/mode-collapse-pacgan-ring8/store"),
    Study("mode-collapse-pacgan-grid25", PACKS, store="results/mode-collapse-pacgan-grid25/store"),
    Study("robustness2d-ring8", ["gan,wgan-gp"], thresholds=RING),
    Study("robustness2d-grid25", ["gan,wgan-gp"], thresholds=[5.0, 10.0, 15.0, 20.0, 22.0, 23.0, 24.0]),
    Study("quick", ["gan,sngan"], thresholds=[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0]),
    Study("mode-collapse-ring8", [f"gan,gan+{r}" for r in ("pack:2", "pack:4", "unrolled:5", "feature-matching",
                                                          "minibatch-stddev", "instance-noise:0.1")], thresholds=RING),
    Study("nsat-ring8", [f"gan@n_critic={k},gan-minimax@n_critic={k}" for k in (1, 5, 25)], thresholds=RING),
    Study("equilibrium-ring8", thresholds=RING),
    Study("conditional-ring8", thresholds=[0.25, 0.5, 0.75, 0.9]),
]
BY_NAME = {s.name: s for s in STUDIES}
# Columns a rebuild cannot reproduce: every import gives the runs new ids and artifact paths.
VOLATILE = ("run_id", "parent_run_id", "artifact_uri")
COMPARED = ("report.md", "trials.csv", "factor_tests.csv")


def pairs_md(study: Study, repo: Path = REPO) -> str:
    """The pairs command's output, as the reader gets it on stdout (run in-process)."""
    from ..cli import main
    args = ["pairs", f"results/{study.name}/trials.csv", *[x for t in study.thresholds for x in ("--threshold", f"{t:g}")],
            *[x for p in study.primary for x in ("--primary", p)]]
    out = io.StringIO()
    with _cwd(repo), contextlib.redirect_stdout(out):
        rc = main(args)
    if rc:
        raise RuntimeError(f"python -m harness {' '.join(args)} exited {rc}")
    return out.getvalue()


def rebuild_report(study: Study, scratch: Path, repo: Path = REPO) -> Path:
    """store import + report into scratch/results/NAME (subprocesses, each with its own scratch
    store, so nothing of the caller's MLflow state is read or changed); the folder."""
    work = scratch / "stores" / study.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    harness = [sys.executable, "-m", "harness"]
    for args in (["store", "import", str(repo / study.store)],
                 ["report", study.name, "--out", str(scratch / "results"), *[x for p in study.primary for x in ("--primary", p)]]):
        done = subprocess.run(harness + args, cwd=work, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"python -m harness {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return scratch / "results" / study.name


def differences(rebuilt: Path, committed: Path) -> list[str]:
    """'FILE: what differs' for each compared file of a rebuilt report folder."""
    out = []
    for name in COMPARED:
        new, old = rebuilt / name, committed / name
        if not new.exists() and not old.exists():
            continue
        if new.exists() != old.exists():
            out.append(f"{committed / name}: {'not committed' if new.exists() else 'not made by the rebuild'}")
        elif name.endswith(".csv"):
            a, b = (_csv(p) for p in (new, old))
            if not a.equals(b):
                out.append(f"{committed / name}: {_csv_difference(a, b)}")
        elif new.read_text() != old.read_text():
            out.append(f"{committed / name}: {_text_difference(new.read_text(), old.read_text())}")
    return out


def _csv(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return df.drop(columns=[c for c in VOLATILE if c in df]).reset_index(drop=True)


def _csv_difference(new: pd.DataFrame, old: pd.DataFrame) -> str:
    if list(new.columns) != list(old.columns) or len(new) != len(old):
        return f"columns/rows differ ({len(new)} x {new.shape[1]} rebuilt, {len(old)} x {old.shape[1]} committed)"
    cols = [c for c in new.columns if not new[c].equals(old[c])]
    return f"{len(cols)} columns differ, first {cols[:5]}"


def _text_difference(new: str, old: str) -> str:
    diff = [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), "committed", "rebuilt", n=0, lineterm="")
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return f"{len(diff)} lines differ, first: {diff[0][:200] if diff else ''}"


def check(studies: list[Study], scratch: Path, repo: Path = REPO) -> list[str]:
    """Rebuild each study into scratch and compare with the committed files; the differences."""
    out = []
    for study in studies:
        committed = repo / "results" / study.name
        if study.store:
            out += differences(rebuild_report(study, scratch, repo), committed)
        else:
            new, old = pairs_md(study, repo), (committed / "pairs.md").read_text() if (committed / "pairs.md").exists() else ""
            if new != old:
                out.append(f"{committed / 'pairs.md'}: {_text_difference(new, old) if old else 'not committed'}")
    return out


def write(studies: list[Study], scratch: Path, repo: Path = REPO) -> None:
    """Rebuild each study onto results/NAME (the report folder's files, or its pairs.md)."""
    for study in studies:
        committed = repo / "results" / study.name
        if not study.store:
            (committed / "pairs.md").write_text(pairs_md(study, repo))
            continue
        rebuilt = rebuild_report(study, scratch, repo)
        for sub in ("plots", "samples"):
            shutil.rmtree(committed / sub, ignore_errors=True)
            shutil.copytree(rebuilt / sub, committed / sub)
        for name in ("report.md", *COMPARED[1:]):
            same_table = name.endswith(".csv") and (committed / name).exists() and (rebuilt / name).exists() \
                and _csv(rebuilt / name).equals(_csv(committed / name))
            if (rebuilt / name).exists() and not same_table:    # only new run ids: the committed file stays
                shutil.copy2(rebuilt / name, committed / name)
        (committed / "report.html").write_text(linked_html(rebuilt))


def linked_html(folder: Path) -> str:
    """The folder's report.html with each embedded image put back as the link to its file under
    plots/ or samples/ (found by its bytes): beside those files in git, the page would otherwise
    hold every image twice (the harness embeds them so that the page travels alone)."""
    page = (folder / "report.html").read_text()
    for png in sorted(folder.glob("*/*.png")):
        page = page.replace("data:image/png;base64," + base64.b64encode(png.read_bytes()).decode(),
                            png.relative_to(folder).as_posix())
    return page


@contextlib.contextmanager
def _cwd(path: Path):
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.study.figures", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["check", "write", "list"])
    p.add_argument("names", nargs="*", help=f"studies (default: all): {', '.join(BY_NAME)}")
    p.add_argument("--scratch", help="where rebuilt reports and scratch stores go (default: a temporary folder)")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        p.error(f"unknown studies {unknown}; known: {', '.join(BY_NAME)}")
    studies = [BY_NAME[n] for n in args.names] or STUDIES
    if args.action == "list":
        for s in studies:
            print(f"{s.name}: {s.command()}")
        return 0
    with tempfile.TemporaryDirectory(prefix="figures-") as tmp:
        scratch = Path(args.scratch or tmp)
        if args.action == "write":
            write(studies, scratch)
            return 0
        differ = check(studies, scratch)
    for line in differ:
        print(line)
    print(f"{len(studies)} studies rebuilt from the committed files: "
          + (f"{len(differ)} files differ" if differ else "every compared file is the same"), file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
