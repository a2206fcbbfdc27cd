"""The plugins a recorded sweep ran with, imported again for a process that rebuilds its
report (the report needs them only for their names: objectives, metrics, sections)."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..plugins import Plugin, load_all
from . import store


def load_for_sweep(client, name: str, given: list[str] | None = None) -> list[Plugin]:
    """The plugins a recorded sweep ran with, for a process that rebuilds its report: those
    given (`report --plugin`, relative to the current directory), else the ones its stored
    experiment lists, relative to the experiment file as the sweep's command named it
    (its parent run's tag experiment_file). The report needs them only for their names."""
    if given:
        return load_all(list(given), Path.cwd(), where="--plugin")
    found = store.find_experiment(client, name)
    parent = next(iter(store.parents(client, found.experiment_id)), None) if found is not None else None
    if parent is None:
        return []
    specs = store.load_experiment_dict(client, parent.info.run_id).get("plugins") or []
    if not specs:
        return []
    recorded = parent.data.tags.get("experiment_file")
    base = Path(recorded).expanduser().parent if recorded else Path.cwd()
    try:
        return load_all(specs, base)
    except ConfigError as err:
        raise ConfigError("--plugin", f"sweep {name!r} ran with plugins {specs}, found relative to its experiment "
                                      f"file {recorded}; from here: {err}. Run the report where the sweep ran, or "
                                      "name them: --plugin PATH (repeatable)") from None
