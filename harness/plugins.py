"""Plugins: a user's own objectives, remedies, penalties, datasets and evaluators, by name.

An experiment names the code it needs, `plugins: [my_losses.py, mypkg.gans]`: a path relative
to the experiment file (a `.py` file, or a package folder), or an importable module name.
Each is imported before the experiment is validated, so the names it registers (with the
same decorators the built-ins use: docs/extending.md) validate, list, price and report like
built-in ones. A plugin is code the user chose to run: importing it runs it, with the user's
rights, in the driver and in every Ray worker. Nothing here sandboxes it.

Why the module name matters: Ray ships each plugin to its workers (`runtime_env()`,
`py_modules`), where it is imported by that name, so a file plugin is imported under its
stem here too, and a stem that names another module (an installed package, a harness
module) is refused rather than shadowed on the workers.

Why the hash: a plugin's sha256 (`Plugin.sha256`) is part of the experiment dict
(`Experiment.to_dict`), so `--resume` refuses changed plugin code as it refuses a changed
experiment file, naming the plugin; it is a param of every trial; and a worker checks that
the code it imported is the code the driver hashed (`activate`).

This module is also the registries' one rule for names (`claim`): every registry (objectives,
remedies, penalties, datasets, evaluators) refuses a second definition of a taken name, so a
plugin cannot replace a built-in by accident. Kept free of torch and of the registries, which
import it.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, UserError

from .registry import NAME_PATTERN, DuplicateName, _definition, check_free, check_name, claim  # noqa: F401

# ---------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Plugin:
    spec: str                 # as the experiment (or --plugin) writes it
    module: str               # the name it is imported as, here and on every Ray worker
    root: Path                # what Ray ships: the .py file or the top-level package folder
    files: tuple[Path, ...]   # what the hash covers: the file, or every .py file under the folder
    sha256: str
    shipped: bool             # False: installed software (site-packages), which Ray does not copy

    @property
    def short(self) -> str:
        return self.sha256[:12]


LOADED: dict[str, Plugin] = {}   # module name -> the plugin imported under it in this process


def is_path(spec: str, base_dir: Path | None = None) -> bool:
    """A path (a .py file, something with a '/', or a folder beside the experiment) or a module name."""
    if spec.endswith(".py") or "/" in spec or "\\" in spec or spec.startswith("."):
        return True
    return base_dir is not None and (base_dir / spec).is_dir()


def module_name(spec: str) -> str:
    """The module a plugin is imported as: a file's stem, a folder's name, or the spec itself."""
    if spec.endswith(".py"):
        return Path(spec).stem
    if "/" in spec or "\\" in spec or spec.startswith("."):
        return Path(spec).name
    return spec


def source_files(root: Path) -> tuple[Path, ...]:
    """The file itself, or every .py file under a package folder (bytecode caches aside), sorted."""
    if root.is_file():
        return (root,)
    return tuple(sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts and p.is_file()))


def digest(root: Path, files: tuple[Path, ...] | None = None) -> str:
    """sha256 of a plugin's code. One file: the sha256 of its bytes (what `sha256sum FILE`
    prints). A folder: of each .py file's path relative to the folder and its bytes, in
    order, so that renaming, adding or removing a module changes it too."""
    files = source_files(root) if files is None else files
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for f in files:
        rel = f.relative_to(root).as_posix().encode()
        data = f.read_bytes()
        h.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _installed(path: Path) -> bool:
    """Whether a path lies in this interpreter's standard library or site-packages."""
    roots = {Path(p).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")
             if (p := sysconfig.get_paths().get(key))}
    path = path.resolve()
    return any(path == r or r in path.parents for r in roots)


def _origin(module) -> Path | None:
    f = getattr(module, "__file__", None)
    return Path(f).resolve() if f else None


def _raised(spec: str, err: BaseException) -> str:
    """An import error as one line: the exception and the plugin's frame that raised it."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "importlib" not in f.filename]
    at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{spec}: importing it raised {type(err).__name__}: {err}{at}"


def _import_file(spec: str, path: Path, name: str, where: str):
    """Execute a .py file or a package folder as module `name` (replacing an earlier import of it)."""
    init = path / "__init__.py" if path.is_dir() else path
    if path.is_dir() and not init.is_file():
        raise ConfigError(where, f"{spec}: the folder {path} has no __init__.py, so it is not a package")
    ispec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(path)]
                                                   if path.is_dir() else None)
    module = importlib.util.module_from_spec(ispec)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        ispec.loader.exec_module(module)
    except UserError as err:   # a registry refusing a name: the plugin's fix, said as such
        _restore(name, previous)
        raise ConfigError(where, f"{spec}: {err}") from None
    except Exception as err:   # noqa: BLE001 - any error of the user's code names the plugin
        _restore(name, previous)
        raise ConfigError(where, _raised(spec, err)) from err
    return module


def _restore(name: str, previous) -> None:
    if previous is None:
        sys.modules.pop(name, None)
    else:
        sys.modules[name] = previous


def _load_path(spec: str, base_dir: Path, where: str) -> Plugin:
    path = (base_dir / spec).expanduser()
    if not path.exists():
        raise ConfigError(where, f"{spec}: no such file or folder (looked for {path})")
    path = path.resolve()
    if path.is_file() and path.suffix != ".py":
        raise ConfigError(where, f"{spec}: a plugin file is a .py file")
    name = path.stem if path.is_file() else path.name
    if not name.isidentifier():
        raise ConfigError(where, f"{spec}: {name!r} is not a Python module name (the plugin is imported under it "
                                 "on every Ray worker); rename it with letters, digits and '_'")
    files = source_files(path)
    sha = digest(path, files)
    known = LOADED.get(name)
    if known is not None and known.root == path and known.sha256 == sha:
        return known
    other = sys.modules.get(name)
    if other is not None and known is None and _origin(other) in (path, path / "__init__.py"):
        known = other = None   # imported the ordinary way (its folder is on sys.path): take it over
    if other is not None and (known is None or known.root != path):
        raise ConfigError(where, f"{spec}: a module named {name!r} is imported already (from "
                                 f"{_origin(other) or 'a built-in'}); rename the plugin so that it is imported "
                                 "under a name of its own")
    found = importlib.util.find_spec(name) if other is None else None
    if found is not None and found.origin and Path(found.origin).resolve() not in (path, path / "__init__.py"):
        raise ConfigError(where, f"{spec}: its module name {name!r} is the name of {found.origin}, which it would "
                                 "hide on the Ray workers; rename the plugin")
    _import_file(spec, path, name, where)
    plugin = Plugin(spec, name, path, files, sha, shipped=True)
    LOADED[name] = plugin
    return plugin


def _load_module(spec: str, where: str, name: str | None = None) -> Plugin:
    """Import module `name` (default: the spec itself) and hash its top-level package or file."""
    name = name or spec
    if not all(part.isidentifier() for part in name.split(".")):
        raise ConfigError(where, f"{spec!r} is neither a module name nor a path (a path ends in .py or has a '/')")
    top = name.split(".")[0]
    if top == "harness":
        raise ConfigError(where, f"{spec}: the harness's own modules are built in, not plugins")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and (name == err.name or name.startswith(err.name + ".")):
            raise ConfigError(where, f"{spec}: no module named {err.name!r} can be imported here (a file beside "
                                     f"the experiment is written with its .py: {name.split('.')[-1]}.py)") from None
        raise ConfigError(where, _raised(spec, err)) from err
    except UserError as err:
        raise ConfigError(where, f"{spec}: {err}") from None
    except Exception as err:   # noqa: BLE001 - any error of the user's code names the plugin
        raise ConfigError(where, _raised(spec, err)) from err
    package = sys.modules[top]
    paths = list(getattr(package, "__path__", []) or [])
    if len(paths) > 1:
        raise ConfigError(where, f"{spec}: package {top!r} spans several folders ({', '.join(paths)}); Ray can ship "
                                 "a package of one folder only")
    root = Path(paths[0]).resolve() if paths else _origin(package)
    if root is None:
        raise ConfigError(where, f"{spec}: module {top!r} has no file to hash or ship")
    files = source_files(root)
    sha = digest(root, files)
    known = LOADED.get(name)
    if known is not None and known.sha256 != sha:   # changed since imported here: run the new code
        try:
            importlib.reload(module)
        except Exception as err:   # noqa: BLE001
            raise ConfigError(where, _raised(spec, err)) from err
    plugin = Plugin(spec, name, root, files, sha, shipped=not _installed(root))
    LOADED[name] = plugin
    return plugin


def load(spec, base_dir: Path | None = None, where: str = "plugins") -> Plugin:
    """Import one plugin (once per process: the same code again is a no-op) and return it.

    base_dir: the experiment file's folder, which a path is relative to; None (an experiment
    dict, a stored one included): a plugin this process imported already is taken as it is,
    else a path is relative to the current directory."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(where, f"expected a path or a module name, got {spec!r}")
    if base_dir is None:   # one module name is one plugin in a process, however it was named
        known = LOADED.get(module_name(spec))
        if known is not None:
            return known
    if is_path(spec, base_dir):
        return _load_path(spec, base_dir if base_dir is not None else Path.cwd(), where)
    return _load_module(spec, where)


def load_all(specs, base_dir: Path | None = None, where: str = "plugins") -> list[Plugin]:
    """Every plugin of a list, in order; two that would import under one name are refused."""
    if not isinstance(specs, list):
        raise ConfigError(where, f"expected a list of paths or module names, got {specs!r}")
    plugins, seen = [], {}
    for i, spec in enumerate(specs):
        here = f"{where}[{i}]"
        name = module_name(spec) if isinstance(spec, str) else None
        if name in seen:
            raise ConfigError(here, f"{spec!r} would be imported as {name!r}, as {seen[name]!r} is; name each "
                                    "plugin once, under names of their own")
        seen[name] = spec
        plugins.append(load(spec, base_dir, here))
    return plugins


# The experiment dict's key for the plugins' hashes (Experiment.to_dict): derived, never written.
HASH_KEY = "plugins_sha256"


def prepare(data: dict, base_dir: Path | None) -> dict:
    """The experiment's plugins imported, before its names are validated (config.from_dict).

    `data` from a file (base_dir given) must not hold HASH_KEY: the loader computes it. From
    an experiment dict (base_dir None: a stored experiment.json, a worker's copy) it is
    dropped here, since `Experiment.to_dict` derives it again from the code actually loaded;
    whether that is the code a sweep began with is `--resume`'s check (experiment_diff) and
    the worker's (`activate`)."""
    if base_dir is None and HASH_KEY in data:
        data = {k: v for k, v in data.items() if k != HASH_KEY}
    if data.get("plugins"):
        load_all(data["plugins"], base_dir)
    return data


def hashes(specs) -> dict[str, str]:
    """spec -> sha256 of each plugin of the list imported in this process (Experiment.to_dict)."""
    out = {}
    for spec in specs or []:
        known = LOADED.get(module_name(spec)) if isinstance(spec, str) else None
        if known is not None:
            out[spec] = known.sha256
    return out


def params(specs) -> dict:
    """A trial's params for its plugins: the list, and each one's sha256 (`plugins.sha256.SPEC`)."""
    found = hashes(specs)
    if not found:
        return {}
    return {"plugins": list(specs), **{f"plugins.sha256.{spec}": sha for spec, sha in found.items()}}


def runtime_env() -> dict:
    """Ray's job runtime environment for the plugins this process loaded: each one's file or
    top-level package folder in `py_modules`, which Ray uploads once and puts on every
    worker's import path, on this machine and on every node of a cluster. {} without plugins
    (Ray then starts as it always did). Installed packages (site-packages) are not copied:
    a cluster's nodes must have them installed, as they have the harness."""
    roots = list(dict.fromkeys(str(p.root) for p in LOADED.values() if p.shipped))
    return {"py_modules": roots} if roots else {}


def activate(experiment: dict) -> list[Plugin]:
    """In a Ray worker, before the trial is built: import the experiment's plugins by module
    name (Ray shipped them onto the import path) and check that each is the code the sweep's
    driver hashed; a mismatch raises, naming the plugin and where the worker found it."""
    expected = experiment.get(HASH_KEY) or {}
    loaded = []
    for i, spec in enumerate(experiment.get("plugins") or []):
        where, name = f"plugins[{i}]", module_name(spec)
        known = LOADED.get(name)
        if known is None or known.spec != spec:
            known = _load_module(spec, where, name)
        if spec in expected and expected[spec] != known.sha256:
            raise ConfigError(where, f"{spec}: the code this worker imported ({known.root}, sha256 {known.short}) "
                                     f"is not the code the sweep began with (sha256 {expected[spec][:12]})")
        loaded.append(known)
    return loaded


def unload(name: str) -> None:
    """Forget plugin module `name`: its modules, and every registry entry it defined (tests,
    and a long-lived process that wants a plugin gone). Built-ins are never touched."""
    from .data import DATASETS
    from .evaluate.registry import EVALUATORS
    from .objectives import OBJECTIVES
    from .penalties import METHOD_PARTS, PENALTIES
    from .remedies import REMEDIES

    def ours(entry) -> bool:
        module = getattr(_definition(entry), "__module__", "") or ""
        return module == name or module.startswith(name + ".")

    for registry in (OBJECTIVES, REMEDIES, PENALTIES, DATASETS, EVALUATORS):
        for key in [k for k, v in registry.items() if ours(v)]:
            registry.pop(key)
            if registry is REMEDIES or registry is PENALTIES:
                METHOD_PARTS.pop(key, None)
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        sys.modules.pop(key)
    LOADED.pop(name, None)
