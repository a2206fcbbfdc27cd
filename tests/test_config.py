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
