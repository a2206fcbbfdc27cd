"""Metric metadata (harness/evaluate/metrics.py): every metric a trial can log is declared, the
protocol-carrying names resolve through their patterns, and a bad declaration is refused."""
from __future__ import annotations

import math

import pytest
import torch

from harness.config import from_dict
from harness.errors import ConfigError, UserError
from harness.evaluate import metrics
from harness.evaluate.base import count_tag
from harness.evaluate.conditional import LABEL_METRICS
from harness.evaluate.fidelity import Extractor, FidelityEvaluator
from harness.evaluate.toy2d import Toy2DEvaluator
from harness.objectives import OBJECTIVES, get_objective


def test_every_metric_of_the_built_in_evaluators_is_declared():
    toy = Toy2DEvaluator("ring8", n_samples=2500)
    assert set(toy.metric_infos()) == set(toy.metric_names)
    for n, split, short in ((5000, "train", "fmnistclf"), (500, "test", "inception"), (2500, "train", "x1")):
        ext = Extractor(short, "unused", "logits", "pool", n_classes=10, rgb=False, batch_size=8)
        image = FidelityEvaluator("fmnist-classifier", ext, "fashion_mnist", n, real_split=split)
        assert metrics.undeclared(image.metric_names) == [], (n, split, short)
        assert metrics.metric_info(f"fid{count_tag(n)}_{split}_{short}").lower_is_better
    for label_metrics in LABEL_METRICS.values():
        assert metrics.undeclared(label_metrics.names) == []


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objectives_diagnostics_are_declared(name):
    """What the trainer logs at its log points (losses, gradient norms, the objective's view of
    the game) has metadata too, so the report's game panel can choose by it."""
    d = torch.zeros(4)
    logged = {"loss_d", "loss_g", "grad_norm_g", "grad_norm_d", "its_per_s", "eval_s",
              *get_objective(name).diagnostics(d, d)}
    assert metrics.undeclared(sorted(logged)) == []


@pytest.mark.parametrize("name, direction, group, bounds", [
    ("fid5k_train_fmnistclf", "lower", "divergence", (0, math.inf)),
    ("kid2.5k_test_inception", "lower", "divergence", (-math.inf, math.inf)),
    ("is5k_fmnistclf", "higher", "score", (1, math.nan)),          # up to the extractor's classes
    ("is5k_fmnistclf_std", None, "spread", (0, math.inf)),
    ("precision1k_train_fmnistclf", "higher", "quality", (0, 1)),
    ("coverage5k_train_fmnistclf", "higher", "diversity", (0, 1)),
    ("density_2k", "higher", "quality", (0, math.inf)),
    ("recall_2k", "higher", "diversity", (0, 1)),
    ("w1_exact_2k", "lower", "divergence", (0, math.inf)),
    ("modes_covered", "higher", "diversity", (0, 8)),              # up to n_modes
    ("reverse_kl", "lower", "divergence", (0, math.log(8))),
    ("is_per_class_mean", "lower", "label", (1, math.nan)),         # an exact name, not the is{n} pattern
])
def test_names_resolve_to_their_declarations(name, direction, group, bounds):
    info = metrics.metric_info(name)
    assert (info.name, info.direction, info.group) == (name, direction, group)
    low, high = info.bounds({"n_modes": 8.0})
    assert low == bounds[0] and (high == bounds[1] or math.isnan(high) and math.isnan(bounds[1]))


def test_density_reads_about_one_and_distances_refuse_relative_thresholds():
    assert metrics.metric_info("density5k_train_fmnistclf").ideal == 1.0
    assert not metrics.metric_info("fid5k_train_fmnistclf").relative
    assert not metrics.metric_info("w1_exact_2k").relative
    assert metrics.metric_info("is5k_fmnistclf").relative and metrics.metric_info("modes_covered").relative


def test_a_name_outside_every_pattern_is_unknown():
    for name in ("fid5k_fmnistclf", "fid5k_val_fmnistclf", "precision_2kk", "arch.depth_g", "score"):
        assert metrics.find_metric(name) is None, name
    with pytest.raises(UserError, match="declares no metadata") as err:
        metrics.metric_info("fid5k_fmnistclf")
    assert "fid{n}_{split}_{extractor}" in str(err.value)
    assert not metrics.lower_is_better("an_undeclared_metric")      # the paper's rule: higher


def test_success_text_says_which_side_succeeds():
    assert metrics.metric_info("w1_exact_2k").success_text(0.2) == "w1_exact_2k < 0.2"
    assert metrics.metric_info("is5k_fmnistclf").success_text(6) == "is5k_fmnistclf > 6"


def test_the_game_panel_draws_the_declared_curves_in_their_order():
    names = ["loss_d", "w1_exact_2k", "d_prob_fake", "modes_covered", "d_prob_real", "js_kde", "grad_norm_g",
             "kl_gen_data_kde", "precision_2k", "d_gap_mean_abs", "d_mean_real"]
    assert [i.name for i in metrics.select(names, curve=True)] == [
        "d_prob_real", "d_prob_fake", "w1_exact_2k", "js_kde", "kl_gen_data_kde", "d_gap_mean_abs", "loss_d",
        "grad_norm_g"]
    assert metrics.metric_info("d_prob_real").reference == 0.5 and metrics.metric_info("grad_norm_g").symlog
    assert [i.name for i in metrics.select(names, family="prdc", group=("quality", "diversity"))] == ["precision_2k"]


def test_declarations_are_checked_and_a_conflict_is_refused(monkeypatch):
    monkeypatch.setattr(metrics, "METRICS", dict(metrics.METRICS))
    monkeypatch.setattr(metrics, "PATTERNS", dict(metrics.PATTERNS))
    info = metrics.register_metric("plugin_score", direction="higher", range=(0, 1), group="quality",
                                   description="a plugin's share")
    assert metrics.register_metric("plugin_score", direction="higher", range=(0, 1), group="quality",
                                   description="a plugin's share") == info              # imported again: kept
    with pytest.raises(metrics.ConflictingMetric, match="declared already"):
        metrics.register_metric("plugin_score", direction="lower", range=(0, 1), group="quality",
                                description="a plugin's share")
    with pytest.raises(metrics.ConflictingMetric):          # a built-in cannot be turned around either
        metrics.register_metric("w1_exact_{n}", direction="higher", range=(0, 1), group="divergence",
                                description="x")
    for bad, kw in ((("x", "sideways"), {}), (("x{k}", "higher"), {}), (("x", "higher"), {"range": (1, 0)}),
                    (("x y", "higher"), {})):
        with pytest.raises(ValueError):
            metrics.register_metric(bad[0], direction=bad[1], group="quality", description="x",
                                    **{"range": (0, 1), **kw})
    metrics.register_metric("plugin_dist{n}_{split}", direction="lower", range=(0, math.inf), group="divergence",
                            description="a plugin's distance")
    assert metrics.metric_info("plugin_dist2.5k_test").lower_is_better


@pytest.mark.parametrize("settings, field, message", [
    ({"success_metric": "w1_exact_2k", "thresholds_relative": True}, "thresholds_relative",
     "use absolute thresholds"),
    ({"success_metric": "n_modes"}, "success_metric", "has no better side"),
    ({"success_metric": "loss_d"}, "success_metric", "has no better side"),
])
def test_an_experiment_cannot_judge_success_by_a_metric_without_a_side(settings, field, message):
    with pytest.raises(ConfigError, match=message) as err:
        from_dict({"dataset": "ring8", "thresholds": [0.5, 1.0], **settings})
    assert err.value.field == field


def test_a_lower_is_better_success_metric_with_absolute_thresholds_is_fine():
    exp = from_dict({"dataset": "ring8", "thresholds": [0.1, 0.5], "success_metric": "w1_exact_2k"})
    assert exp.success_metric == "w1_exact_2k"
