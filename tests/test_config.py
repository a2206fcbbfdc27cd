import json
from pathlib import Path

import pytest

from harness.config import PAPER_THRESHOLDS, ConfigError, Experiment, experiment_diff, from_dict, load_experiment
from harness.trial import evaluator_name, trials_of


def test_defaults_come_from_code():
    e = from_dict({})
    assert e.dataset == "fashion_mnist" and e.objectives == ["gan", "wgan-gp"]
    assert e.thresholds == PAPER_THRESHOLDS and PAPER_THRESHOLDS[0] == 1.0 and PAPER_THRESHOLDS[-1] == 9.0
    assert len(PAPER_THRESHOLDS) == 17


def test_a_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("dataset: ring8\nbudget: {iterations: 10}\nspace: {n: 2, seed: 5}\n")
    e = load_experiment(path)
    assert e.name == "study" and e.budget.iterations == 10 and e.budget.batch_size == 64
    assert e.space.n == 2 and e.space.mode == "sample" and evaluator_name(e) == "toy2d"
    assert e.eval.n_samples == Experiment().eval.n_samples


def test_trials_are_paired_and_carry_their_config():
    e = from_dict({"dataset": "ring8", "space": {"n": 3}, "objectives": ["gan", "wgan-gp"], "seeds": [0, 1]})
    trials = trials_of(e)
    assert len(trials) == 3 * 2 * 2 and len({t.id for t in trials}) == 12
    assert trials[0].arch == trials[1].arch and trials[0].objective != trials[1].objective
    p = trials[0].params()
    assert p["arch.depth_g"] == trials[0].arch.depth_g and p["objective.n_critic"] == 1
    assert p["budget.iterations"] == e.budget.iterations and p["evaluator"] == "toy2d"


def test_space_modes():
    assert len(from_dict({"space": {"mode": "presets", "presets": ["dcgan", "tanh"]}}).archs()) == 2
    assert len(from_dict({"space": {"mode": "grid", "restrict": {
        "nonlin_g": ["relu"], "nonlin_d": ["relu"], "depth_g": [4], "depth_d": [4, 8]}}}).archs()) == 2 * 2 * 2 * 3 * 3
    ids = from_dict({"space": {"mode": "ids", "ids": ["dcgan", "2438bde3"]}}).archs()
    assert [a.id for a in ids][1] == "2438bde3"


@pytest.mark.parametrize("data,field", [
    ({"datset": "ring8"}, "datset"),
    ({"budget": {"iterations": -5}}, "budget.iterations"),
    ({"budget": {"iters": 5}}, "budget.iters"),
    ({"objectives": ["gan", "wgan-gpp"]}, "objectives[1]"),
    ({"dataset": "celeba"}, "dataset"),
    ({"space": {"restrict": {"depth_g": [4, 7]}}}, "space.restrict.depth_g"),
    ({"space": {"restrict": {"width": [4]}}}, "space.restrict.width"),
    ({"space": {"mode": "presets", "presets": ["biggan"]}}, "space.presets[0]"),
    ({"space": {"mode": "ids", "ids": ["nope"]}}, "space.ids[0]"),
    ({"thresholds": [1.0, "high"]}, "thresholds[1]"),
    ({"thresholds": "1,2"}, "thresholds"),
    ({"seeds": [0.5]}, "seeds"),
    ({"eval": {"n_samples": 0}}, "eval.n_samples"),
    ({"eval": {"evaluator": "clip"}}, "eval.evaluator"),
    ({"train": {"precision": "fp8"}}, "train.precision"),
    ({"objective_overrides": {"gan": {"lr": 1.0}}}, "objective_overrides.gan.lr"),
    ({"objective_overrides": {"gan": {"lr_d": "fast"}}}, "objective_overrides.gan.lr_d"),
    ({"space": {"n": 10000}}, "space.n"),
    ({"objective_overrides": {"sngan": {"optimizer": "sgd"}}}, "objective_overrides.sngan.optimizer"),
    ({"objective_overrides": {"wgan-gp": {"n_critic": 0}}}, "objective_overrides.wgan-gp.n_critic"),
    ({"budget": 5}, "budget"),
    ({"success_metric": ""}, "success_metric"),
    ({"reproduces": "someone2099"}, "reproduces"),
])
def test_bad_values_name_the_field(data, field):
    with pytest.raises(ConfigError) as err:
        from_dict(data)
    assert err.value.field == field
    assert str(err.value).startswith(field + ":")


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_experiment(bad)
    with pytest.raises(ConfigError, match="no such file"):
        load_experiment(tmp_path / "missing.yaml")


def test_experiment_diff_names_changed_fields():
    old = {"budget": {"iterations": 200, "batch_size": 64}, "objectives": ["gan"], "name": "x"}
    new = {"budget": {"iterations": 400, "batch_size": 64}, "objectives": ["gan", "sngan"], "name": "x",
           "extra": 1}
    diff = experiment_diff(old, new)
    assert "budget.iterations: 200 -> 400" in diff
    assert any(d.startswith("objectives:") for d in diff) and any(d.startswith("extra:") for d in diff)
    assert experiment_diff(old, dict(old)) == []


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_experiment_is_valid(path):
    e = load_experiment(path)
    assert e.name == path.stem and e.description
    assert trials_of(e)


def test_a_field_added_since_a_sweep_began_counts_as_its_default():
    new = from_dict({"train": {"checkpoint_every": 0}}).to_dict()
    old = json.loads(json.dumps(new))
    del old["train"]["checkpoint_every"], old["train"]["keep_checkpoints"]
    assert experiment_diff(old, new) == []
    changed = from_dict({"train": {"checkpoint_every": 40}}).to_dict()
    assert experiment_diff(old, changed) == ["train.checkpoint_every: 0 -> 40"]


@pytest.mark.parametrize("data,field,words", [
    ({"conditional": "yes"}, "conditional", "expected bool"),
    ({"dataset": "cifar10", "conditional": True}, "conditional", "evaluator 'inception' has no conditional metrics"),
    ({"dataset": "fashion_mnist", "eval": {"evaluator": "inception"}, "conditional": True}, "conditional", "inception"),
    ({"dataset": "ring8", "conditional": True, "objectives": ["gan", "gan+pack:2"]}, "objectives[1]",
     "remedy 'pack' does not support conditional: true (a pack would mix samples of different labels"),
    ({"dataset": "ring8", "conditional": True, "objectives": ["gan+unrolled:3"]}, "objectives[0]", "without labels"),
    ({"dataset": "ring8", "conditional": True, "objectives": ["gan+feature-matching"]}, "objectives[0]", "'feature-"),
    ({"dataset": "ring8", "conditional": True, "objectives": ["gan+minibatch-stddev"]}, "objectives[0]", "output layer"),
    ({"dataset": "ring8", "conditional": True, "thresholds_relative": True, "thresholds": [0.5],
      "success_metric": "on_requested_mode"}, "thresholds_relative", "use absolute thresholds"),
])
def test_conditional_combinations_we_do_not_support_are_named(data, field, words):
    with pytest.raises(ConfigError) as err:
        from_dict(data)
    assert err.value.field == field and words in str(err.value)


def test_conditional_needs_labels(monkeypatch):
    from harness.data import DATASETS, DatasetSpec
    monkeypatch.setitem(DATASETS, "blob", DatasetSpec("blob", "toy2d", 2, 1, 0, "one Gaussian, no labels"))
    with pytest.raises(ConfigError, match="conditional: dataset 'blob' has no labels"):
        from_dict({"dataset": "blob", "conditional": True})
    assert not from_dict({"dataset": "blob"}).conditional


def test_conditional_defaults_off_and_allows_input_remedies():
    assert Experiment().conditional is False
    e = from_dict({"dataset": "ring8", "conditional": True, "objectives": ["gan", "wgan-gp+instance-noise:0.1"]})
    assert e.conditional and trials_of(e)[0].params()["conditional"] is True
    assert from_dict({"dataset": "fashion_mnist", "conditional": True}).conditional   # fmnist-classifier by auto


# ---- issue 23 section 2: inputs that make a sweep unfinishable or take the machine down ----------

import time  # noqa: E402

from harness import cli, config  # noqa: E402


@pytest.mark.parametrize("thresholds,relative,repeated", [
    ([7, 4, 4, 1], False, "4"),
    ([1, 1.0], False, "1"),
    ([2.5, 2.5, 2.5], False, "2.5"),
    ([3, 1, 3, 1], False, "1, 3"),
    ([0.5, 0.9, 0.5], True, "0.5"),
])
def test_a_repeated_threshold_is_refused_before_anything_trains(thresholds, relative, repeated):
    """Each threshold is one success count per method: a repeat crashed the aggregation after every trial."""
    with pytest.raises(ConfigError) as err:
        from_dict({"dataset": "ring8", "thresholds": thresholds, "thresholds_relative": relative})
    assert err.value.field == "thresholds" and f"{repeated} named more than once" in str(err.value)


@pytest.mark.parametrize("data,field,words", [
    ({"budget": {"iterations": 10**12}}, "budget.iterations", f"at most {config.MAX_D_STEPS} D steps"),
    ({"budget": {"iterations": config.MAX_D_STEPS + 1}}, "budget.iterations", "D steps"),
    ({"objectives": ["gan", "gan@n_critic=1000000000"]}, "objectives[1]", "n_critic 1000000000 x budget.iterations"),
    ({"objectives": ["wgan-gp"], "budget": {"iterations": config.MAX_D_STEPS // 5 + 1}}, "objectives[0]",
     "n_critic 5 x budget.iterations"),
    ({"objectives": ["gan"], "objective_overrides": {"gan": {"n_critic": 10**6}}}, "objectives[0]", "n_critic 1000000"),
    ({"seeds": list(range(100_000))}, "seeds", f"at most {config.MAX_SEEDS}"),
    ({"seeds": list(range(config.MAX_SEEDS + 1))}, "seeds", "seeds; at most"),
    ({"seeds": [2**64]}, "seeds", "0 .. 2^32 - 1"),
    ({"space": {"mode": "grid"}, "seeds": [0, 1, 2, 3, 4, 5]}, "space", "trials; a sweep runs at most"),
    ({"space": {"mode": "ids", "ids": ["dcgan"]}, "seeds": list(range(1000)),
      "objectives": [f"gan@lr_d={i + 1}e-4" for i in range(51)]}, "seeds", "51000 trials"),
    ({"thresholds": [float(i) for i in range(config.MAX_THRESHOLDS + 1)]}, "thresholds", "thresholds; at most"),
    ({"eval": {"every": 1}, "budget": {"iterations": 5000}}, "eval.every", "5001 evaluations per trial"),
])
def test_work_past_its_bound_is_refused_by_name(data, field, words):
    with pytest.raises(ConfigError) as err:
        from_dict({"dataset": "ring8", **data})
    assert err.value.field == field and words in str(err.value), str(err.value)


def test_work_at_its_bound_passes():
    e = from_dict({"dataset": "ring8", "objectives": ["gan"], "budget": {"iterations": config.MAX_D_STEPS},
                   "seeds": list(range(config.MAX_SEEDS)), "eval": {"every": config.MAX_D_STEPS // (config.MAX_EVALUATIONS - 1)},
                   "thresholds": [float(i) for i in range(config.MAX_THRESHOLDS)]})
    assert e.budget.iterations == config.MAX_D_STEPS and len(e.seeds) == config.MAX_SEEDS


def _write(tmp_path, text, name="study.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,field,lines", [
    ("dataset: ring8\nbudget: {iterations: 50}\nseeds: [0]\nbudget: {iterations: 999999}\n", "budget", "lines 2 and 4"),
    ("dataset: ring8\nbudget:\n  iterations: 50\n  batch_size: 8\n  iterations: 999999\n", "budget.iterations",
     "lines 3 and 5"),
    ("dataset: ring8\neval: {n_samples: 100, n_samples: 200}\n", "eval.n_samples", "lines 2 and 2"),
    ("dataset: ring8\n'dataset': grid25\n", "dataset", "lines 1 and 2"),
    ("dataset: ring8\nobjective_overrides:\n  gan: {lr_d: 1.0e-4}\n  gan: {lr_d: 1.0}\n", "objective_overrides.gan",
     "lines 3 and 4"),
])
def test_a_key_given_twice_is_an_error_naming_it(tmp_path, text, field, lines):
    """YAML keeps the last silently: a second `budget:` turned a 50-iteration study into 999,999."""
    with pytest.raises(ConfigError) as err:
        load_experiment(_write(tmp_path, text))
    assert err.value.field == field and f"given twice ({lines})" in str(err.value), str(err.value)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("text", [
    "dataset: ring8\nobjectives: &o [gan]\n",
    "base: &b {iterations: 10}\n",
    "dataset: ring8\nbudget: &b {iterations: 10}\neval: *b\n",
    "dataset: ring8\nbudget: &b {iterations: 10}\n<<: *b\n",
    "dataset: ring8\nobjectives:\n  " + BOMB.replace("\n", "\n  ") + "\n",
])
def test_anchors_and_aliases_are_refused_whatever_they_would_expand_to(tmp_path, text):
    """An alias bomb of 811 bytes under objectives: made a 351 MB error message (1.9 GB of RAM)."""
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_experiment(_write(tmp_path, text))
    assert err.value.field == "experiment" and "anchors and aliases" in str(err.value)
    assert len(str(err.value)) < 500 and time.perf_counter() - start < 1


def test_an_oversized_file_is_refused_unread(tmp_path):
    path = _write(tmp_path, "dataset: ring8\n" + "#" * config.MAX_FILE_BYTES + "\n")
    with pytest.raises(ConfigError, match=f"at most {config.MAX_FILE_BYTES}"):
        load_experiment(path)


@pytest.mark.parametrize("data,field", [
    ({"seeds": [-1] * 10**6}, "seeds"),
    ({"budget": "x" * 10**6}, "budget"),
    ({"objectives": [list(range(10**6))]}, "objectives[0]"),
    ({"thresholds": [1.0, {"k": "v" * 10**6}]}, "thresholds[1]"),
    ({"x" * 10**6: 1}, None),   # an unknown key, named cut short
    ({"name": "n" * 10**6}, "name"),
])
def test_error_messages_quote_values_briefly(data, field):
    with pytest.raises(ConfigError) as err:
        from_dict({"dataset": "ring8", **data})
    assert err.value.field == field if field else err.value.field.startswith("xxx") and len(err.value.field) < 100
    assert len(str(err.value)) < 1000


@pytest.mark.parametrize("name,words", [
    ("a" * (config.NAME_MAX + 1), f"at most {config.NAME_MAX}"),
    ("a" * 250, f"at most {config.NAME_MAX}"),
    ("a" * 5000, f"at most {config.NAME_MAX}"),
    ("-rf", "starts with '-'"),
    ("--help", "starts with '-'"),
    ("-", "starts with '-'"),
])
def test_names_that_cannot_become_folders_or_commands_are_refused(name, words):
    with pytest.raises(ConfigError) as err:
        from_dict({"dataset": "ring8", "name": name})
    assert err.value.field == "name" and words in str(err.value)
    assert len(str(err.value)) < 500


def test_the_longest_name_fits_every_folder_and_mlflow_name_made_from_it():
    name = "a" * config.NAME_MAX
    assert from_dict({"dataset": "ring8", "name": name}).name == name
    n = config.MAX_TRIALS                      # the widest shard numbers
    tune_run = f"{name}-{n}of{n}-{time.strftime('%Y%m%d-%H%M%S')}"   # study/sweep/driver.fit
    parent_run = f"{name} shard {n}/{n}"                              # study/store.start_parent
    assert len(tune_run.encode()) <= config.FILENAME_MAX_BYTES
    assert len(parent_run) <= config.MLFLOW_RUN_NAME_MAX and len(name) <= config.MLFLOW_EXPERIMENT_NAME_MAX


@pytest.mark.parametrize("argv", [["sweep", "{path}", "--name=-rf"], ["sweep", "{path}", "--name=" + "a" * 300],
                                  ["sweep", "{path}"], ["train", "{path}"]])
def test_bad_names_and_files_exit_2_through_the_cli_before_anything_is_written(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    good = _write(tmp_path, "dataset: ring8\nbudget: {iterations: 5}\n", "good.yaml")
    twice = _write(tmp_path, "dataset: ring8\nbudget: {iterations: 5}\nbudget: {iterations: 999999}\n", "twice.yaml")
    path = good if any(a.startswith("--name") for a in argv) else twice
    assert cli.main([a.replace("{path}", str(path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and ("--name" in err or "budget: " in err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.yaml", "twice.yaml"]
