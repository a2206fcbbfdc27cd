"""Plugins (harness/plugins.py): a user's objective, penalty, remedy, dataset and evaluator,
loaded from the experiment, validated, listed, hashed, refused on --resume when changed, and
recorded like built-ins. In-process and without Ray: the fast twin of
tests/examples/test_examples.py, which runs the examples/ study as a real sweep."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from harness import cli, plugins
from harness.config import ConfigError, experiment_diff, from_dict, load_experiment

sys.path.insert(0, str(Path(__file__).parent / "study" / "sweep"))
from sweep_fakes import fake_sweep, made_store, store_template  # noqa: E402, F401 - fixtures

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STUDY = "ragan-vs-gan.yaml"


def _forget(*names):
    for name in names:
        plugins.unload(name)


@pytest.fixture
def examples(tmp_path):
    """examples/ copied to a folder of its own (as a user's study outside the repository);
    the plugins it loads are forgotten afterwards, registries included."""
    folder = tmp_path / "study"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("__pycache__"))
    _forget("ragan", "nearest_mode")
    yield folder
    _forget("ragan", "nearest_mode")


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ---- loading and validation ------------------------------------------------------------------

def test_an_experiments_plugins_register_before_validation_and_are_hashed(examples):
    from harness.evaluate import EVALUATORS
    from harness.objectives import OBJECTIVES
    from harness.penalties import PENALTIES
    exp = load_experiment(examples / STUDY)
    assert exp.objectives == ["gan", "ragan", "ragan+r2:1"] and exp.eval.evaluator == "toy2d-nearest"
    assert "ragan" in OBJECTIVES and "r2" in PENALTIES and "toy2d-nearest" in EVALUATORS
    hashes = exp.to_dict()[plugins.HASH_KEY]
    assert hashes == {spec: hashlib.sha256((examples / spec).read_bytes()).hexdigest()
                      for spec in ("ragan.py", "nearest_mode.py")}
    # loading the same file again is a no-op (no second registration, no DuplicateName)
    assert load_experiment(examples / STUDY).to_dict()[plugins.HASH_KEY] == hashes


def test_without_its_plugin_a_name_is_unknown(examples):
    text = (examples / STUDY).read_text().replace("plugins: [ragan.py, nearest_mode.py]", "")
    with pytest.raises(ConfigError) as err:
        load_experiment(_write(examples, "bare.yaml", text))
    assert err.value.field == "objectives[1]" and "'ragan'" in str(err.value)


@pytest.mark.parametrize("plugin,field,says", [
    ("missing.py", "plugins[0]", "no such file"),
    ("bad name.py", "plugins[0]", "not a Python module name"),
    ("yaml.py", "plugins[0]", "imported already"),                    # would shadow PyYAML on the workers
    ("no_such_module_xyz", "plugins[0]", "no module named 'no_such_module_xyz'"),
    ("harness.objectives.gan", "plugins[0]", "built in"),
])
def test_a_plugin_that_cannot_load_is_refused_naming_it(tmp_path, plugin, field, says):
    if plugin.endswith(".py") and plugin != "missing.py":
        _write(tmp_path, plugin, "X = 1\n")
    path = _write(tmp_path, "e.yaml", yaml.safe_dump({"dataset": "ring8", "objectives": ["gan"], "plugins": [plugin]}))
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert err.value.field == field and says in str(err.value) and plugin.split(".")[0] in str(err.value)


def test_a_plugin_that_raises_or_takes_a_built_in_name_is_refused_naming_its_line(tmp_path):
    _write(tmp_path, "broken_plugin.py", "import math\n\nraise RuntimeError('half written')\n")
    _write(tmp_path, "thief_plugin.py", "from harness.objectives import Objective, register\n\n\n"
                                        "@register\nclass Mine(Objective):\n    name = 'gan'\n")
    for name, says in (("broken_plugin", "RuntimeError: half written at "), ("thief_plugin", "'gan' is registered")):
        path = _write(tmp_path, "e.yaml", yaml.safe_dump({"dataset": "ring8", "plugins": [f"{name}.py"]}))
        with pytest.raises(ConfigError) as err:
            load_experiment(path)
        assert err.value.field == "plugins[0]" and says in str(err.value) and f"{name}.py" in str(err.value)
        assert name not in sys.modules and name not in plugins.LOADED
        if name == "broken_plugin":
            assert str(err.value).endswith("broken_plugin.py:3")   # the line that raised


def test_the_hash_is_derived_never_written(examples):
    text = (examples / STUDY).read_text() + "plugins_sha256: {ragan.py: abc}\n"
    with pytest.raises(ConfigError) as err:
        load_experiment(_write(examples, "forged.yaml", text))
    assert err.value.field == "plugins_sha256"


def test_a_package_folders_hash_covers_its_modules_and_their_names(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    _write(pkg, "__init__.py", "")
    _write(pkg, "losses.py", "A = 1\n")
    first = plugins.digest(pkg)
    (pkg / "losses.py").rename(pkg / "other.py")
    assert plugins.digest(pkg) != first                   # same bytes, another module name
    (pkg / "other.py").rename(pkg / "losses.py")
    assert plugins.digest(pkg) == first
    _write(pkg, "losses.py", "A = 2\n")
    assert plugins.digest(pkg) != first


# ---- the registries: one public decorator each, duplicates refused ------------------------------

def test_every_registry_refuses_a_second_definition_and_takes_a_re_import(tmp_path):
    """A plugin registering a built-in's name (each axis) fails naming both; the same module
    imported again after an edit replaces its own entries."""
    source = '''
import torch
from harness.data import image_dataset, mixture_dataset
from harness.evaluate import register_evaluator
from harness.evaluate.toy2d import Toy2DEvaluator
from harness.objectives import Objective, register
from harness.penalties import Penalty, register_penalty
from harness.remedies import Remedy, register as register_remedy

@register
class O(Objective):
    name = "{o}"

@register_remedy
class R(Remedy):
    name = "{r}"

@register_penalty
class P(Penalty):
    name = "{p}"

@mixture_dataset("{m}", description="two modes")
def modes():
    return torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), 0.1

@image_dataset("{i}", channels=1, num_classes=2, n_train=4, description="four images")
def load(split, root, path):
    return torch.zeros(4, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])

@register_evaluator("{e}", "toy2d again")
def build(options):
    return Toy2DEvaluator(options.dataset, options.n_samples)
'''
    names = dict(o="mine-o", r="mine-r", p="mine-p", m="mine-m", i="mine-i", e="mine-e")
    plugin = _write(tmp_path, "every_axis.py", source.format(**names))
    try:
        plugins.load("every_axis.py", tmp_path)
        from harness.data import load_images, mixture_modes
        assert mixture_modes("mine-m")[0].shape == (2, 2)
        x, y = load_images("mine-i", limit=3)
        assert x.shape == (3, 1, 32, 32) and y.tolist() == [0, 1, 0]   # 28 x 28 padded as MNIST
        plugin.write_text(source.format(**names) + "\n# edited\n")      # the same definitions again
        plugins.load("every_axis.py", tmp_path)
        for axis, builtin in (("o", "gan"), ("r", "pack"), ("p", "r1"), ("m", "ring8"), ("i", "mnist"),
                              ("e", "toy2d"), ("r", "gp"), ("p", "pack")):
            clash = _write(tmp_path, f"clash_{axis}_{builtin.replace('-', '_')}.py",
                           source.format(**{**names, axis: builtin}))
            with pytest.raises(ConfigError) as err:
                plugins.load(clash.name, tmp_path)
            assert builtin in str(err.value) and clash.name in str(err.value)
            assert ("registered already" in str(err.value) or "has that name already" in str(err.value))
            plugins.unload(clash.stem)
    finally:
        plugins.unload("every_axis")
    from harness.data import DATASETS
    from harness.objectives import OBJECTIVES
    assert "mine-m" not in DATASETS and "mine-o" not in OBJECTIVES and "gan" in OBJECTIVES


# ---- the CLI: list --plugin, train ---------------------------------------------------------------

def test_list_takes_plugins_and_shows_their_names_like_built_ins(examples, capsys, monkeypatch):
    monkeypatch.chdir(examples)
    assert cli.main(["list", "objectives", "--plugin", "ragan.py"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ragan, gan = (next(line for line in lines if line.split()[:1] == [n]) for n in ("ragan", "gan"))
    assert ragan.split()[1:] == gan.split()[1:]           # the same settings as DCGAN's, in the same format
    assert cli.main(["list", "penalties", "--plugin", "ragan.py"]) == 0
    assert "r2:GAMMA (default 10;" in capsys.readouterr().out
    assert cli.main(["list", "evaluators", "--plugin", "nearest_mode.py", "--plugin", "ragan.py"]) == 0
    assert any(line.startswith("toy2d-nearest ") for line in capsys.readouterr().out.splitlines())
    assert cli.main(["list", "objectives", "--plugin", "absent.py"]) == 2
    assert "--plugin[0]: absent.py: no such file" in capsys.readouterr().err


# ---- the objective and the penalty compute what the paper says --------------------------------------

def test_ragan_losses_are_the_papers_and_the_g_step_passes_real_outputs(examples):
    from harness.objectives import get_objective
    from harness.step import GANStep
    plugins.load("ragan.py", examples)
    ragan = get_objective("ragan+r2:1")
    r, f = torch.randn(16, 1), torch.randn(16, 1)
    d_ra = lambda a, b: torch.sigmoid(a - b.mean())   # noqa: E731 - D_ra(x, y) = sigmoid(C(x) - E C(y))
    assert torch.allclose(ragan.d_loss(r, f), -(d_ra(r, f).log().mean() + (1 - d_ra(f, r)).log().mean()))
    assert torch.allclose(ragan.g_loss(f, r), -(d_ra(f, r).log().mean() + (1 - d_ra(r, f)).log().mean()))
    penalty = ragan.all_penalties[0]
    assert penalty.name == "r2" and penalty.weight == 0.5   # gamma / 2

    torch.manual_seed(0)
    G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    step = GANStep(G, D, ragan, torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1))
    assert step.needs_real_in_g_step                          # so the session draws a real batch for G's step
    seen = []
    g_loss = ragan.g_loss
    ragan.g_loss = lambda d_fake, d_real: seen.append((d_fake.detach(), d_real)) or g_loss(d_fake, d_real)
    z, real = torch.randn(8, 2), torch.randn(8, 2)
    before = [p.detach().clone() for p in G.parameters()]
    step.generator(z, real=real)
    (d_fake, d_real), = seen
    assert torch.allclose(d_real, D(real).detach()) and not d_real.requires_grad   # a constant for G
    assert torch.allclose(d_fake, D(G.weight.new_tensor(z) @ before[0].T + before[1]).detach())
    assert any(not torch.equal(b, p) for b, p in zip(before, G.parameters()))      # G learned from it
    step.discriminator(real, z)                               # the R2 term through D's input gradient


# ---- params: the plugins' hashes and applied.* --------------------------------------------------------

def test_params_record_the_plugins_and_what_each_setting_resolved_to(examples):
    from harness.train import Session, start_record
    from harness.trial import placement, trials_of
    exp = load_experiment(examples / STUDY)
    trial = next(t for t in trials_of(exp) if t.objective == "ragan+r2:1")
    p = start_record(trial).params
    sha = hashlib.sha256((examples / "ragan.py").read_bytes()).hexdigest()
    assert p["plugins"] == ["ragan.py", "nearest_mode.py"] and p["plugins.sha256.ragan.py"] == sha
    assert p["applied.evaluator"] == "toy2d-nearest" and p["applied.headline"] == "mode_entropy"
    assert p["applied.penalties"] == "r2:1" and p["applied.penalty.r2.weight"] == 0.5
    assert p["applied.z_dim"] == 2 and p["applied.d_norm"] == "none"
    assert p["applied.device"] == "cpu" and p["applied.precision"] == "fp32"   # auto on a CPU, 2D: fp32
    exp.train.precision = "bf16"
    assert trial.placement_params()["applied.precision"] == "bf16"
    session = Session(trial)                                # the trainer runs what the params say
    assert session.amp_dtype == torch.bfloat16 == placement(exp).amp_dtype
    assert "applied.precision" not in trial.params()        # the driver's params: no machine-bound values


# ---- workers: the shipped code is checked against the driver's hash ------------------------------------

def test_a_worker_imports_the_plugins_and_refuses_other_code(examples):
    exp = load_experiment(examples / STUDY)
    assert plugins.runtime_env() == {"py_modules": [str(examples / "ragan.py"), str(examples / "nearest_mode.py")]}
    d = json.loads(json.dumps(exp.to_dict()))               # what Ray hands the worker
    assert [p.spec for p in plugins.activate(d)] == ["ragan.py", "nearest_mode.py"]
    assert from_dict(d).objectives == exp.objectives        # the stored dict validates, its hashes dropped
    d[plugins.HASH_KEY]["ragan.py"] = "0" * 64
    with pytest.raises(ConfigError) as err:
        plugins.activate(d)
    assert err.value.field == "plugins[0]" and "ragan.py" in str(err.value) and "not the code the sweep began" in \
        str(err.value)


# ---- --resume: changed plugin code is a changed experiment ------------------------------------------

def test_resume_refuses_changed_plugin_code_naming_it_and_takes_unchanged(examples, fake_sweep, made_store,
                                                                           capsys, monkeypatch):
    from harness.study import store
    from harness.study.sweep.driver import find_parent
    path = examples / STUDY
    assert cli.main(["sweep", str(path), "--no-report"]) == 0
    client = store.get_client()
    run = store.children(client, store.find_experiment(client, "ragan-vs-gan").experiment_id)[0]
    assert run.data.params["plugins.sha256.ragan.py"] == hashlib.sha256((examples / "ragan.py").read_bytes()).hexdigest()
    assert {r.data.params["objective"] for r in store.children(client, run.info.experiment_id)} == \
        {"gan", "ragan", "ragan+r2:1"}
    capsys.readouterr()

    original = (examples / "ragan.py").read_text()
    (examples / "ragan.py").write_text(original.replace("name = \"ragan\"", "name = \"ragan\"  # edited"))
    assert cli.main(["sweep", str(path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "plugins_sha256.ragan.py" in err and "differs from the one sweep 'ragan-vs-gan' began with" in err
    assert fake_sweep.ray_starts == 1

    (examples / "ragan.py").write_text(original)
    exp = load_experiment(path)
    assert find_parent(client, "ragan-vs-gan", "1/1", exp.to_dict(), path, True)[1] is not None
    stored = store.load_experiment_dict(client, run.data.tags["mlflow.parentRunId"])
    assert experiment_diff(stored, exp.to_dict()) == []
