"""Issue 23: no file the evaluators read may run code when loaded.

A crafted .pt whose pickle calls `open(marker, "w")` when unpickled stands for any payload. It is
placed where torch-fidelity used to unpickle from (the Inception / classifier weights file named by
`eval.weights_path`, the shared real-feature cache) and the test asserts the marker never appears,
that the user gets an error naming the file (weights) or a recompute (cache), and that the figures
of a recomputed cache equal a clean one's.
"""

import contextlib
import pickle
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from harness.evaluate import EvaluatorUnavailable, make_evaluator
from harness.evaluate import fidelity
from harness.evaluate.fidelity import build_extractor, read_verified_npz, write_verified_npz

N = 100   # real test images: the smallest count the metrics accept, times two


class _Payload:
    """Unpickling this calls open(marker, 'w'): a harmless stand-in for arbitrary code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def crafted_pt(path: Path, marker: Path, fmt: str = "zip") -> Path:
    """A .pt that runs the payload under torch.load(weights_only=False): torch.save's zip format or a
    bare pickle (torch.load's legacy path reads both)."""
    obj = {"Conv2d_1a_3x3.conv.weight": _Payload(marker)}
    if fmt == "zip":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


@pytest.mark.parametrize("fmt", ["zip", "pickle"])
def test_the_payload_is_live(tmp_path, fmt):
    """The control: an unsafe load of the crafted file does create the marker, so the tests below
    that find no marker show a safe load, not a dud payload."""
    marker = tmp_path / "pwned"
    f = crafted_pt(tmp_path / "evil.pt", marker, fmt)
    with contextlib.suppress(RuntimeError):   # a bare pickle: the payload runs, then "invalid magic number"
        torch.load(f, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("fmt", ["zip", "pickle"])
def test_crafted_inception_weights_are_refused_before_training(tmp_path, fmt):
    marker = tmp_path / "pwned"
    f = crafted_pt(tmp_path / "weights-inception.pth", marker, fmt)
    with pytest.raises(EvaluatorUnavailable, match=r"Inception weights_path.*weights_only=True") as ei:
        make_evaluator("inception", "cifar10", 1000, weights_path=f, cache_dir=tmp_path)
    assert str(f) in str(ei.value)
    assert not marker.exists()


def test_crafted_classifier_weights_are_refused_before_training(tmp_path):
    marker = tmp_path / "pwned"
    f = crafted_pt(tmp_path / "clf.pt", marker)
    with pytest.raises(EvaluatorUnavailable, match="weights_only=True"):
        make_evaluator("fmnist-classifier", "fashion_mnist", N, weights_path=f, cache_dir=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["inception-v3-compat", "harness-fmnist-classifier-v1"])
def test_extractors_never_hand_the_file_to_an_unsafe_loader(tmp_path, name):
    """Past the registry's check too: building the extractor itself reads the file safely (the
    classifier extractor's own load is weights_only=True; Inception's goes through load_weights)."""
    from harness.evaluate.classifier import ensure_registered
    ensure_registered()
    marker = tmp_path / "pwned"
    f = crafted_pt(tmp_path / "w.pt", marker)
    layer = "2048" if name.startswith("inception") else "logits"
    with pytest.raises((EvaluatorUnavailable, pickle.UnpicklingError)):
        build_extractor(name, [layer], f)
    assert not marker.exists()


def test_an_unknown_extractor_class_is_not_trusted(tmp_path):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
    assert "vgg16" in FEATURE_EXTRACTORS_REGISTRY   # torch-fidelity's, loads with weights_only=False
    with pytest.raises(EvaluatorUnavailable, match="not been checked"):
        build_extractor("vgg16", ["fc2"], tmp_path / "vgg.pt")


def _stand_in_inception_state() -> dict:
    """A state dict of torch-fidelity's InceptionV3 architecture, numbered 0, 1, 2... so that a
    mix-up shows: the real weights cannot be downloaded here, and only their shapes matter to the
    loading path. The architecture is built on the meta device (no memory, no init time)."""
    import torch_fidelity.feature_extractor_inceptionv3 as mod
    with torch.device("meta"), mock.patch.object(mod, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(mod.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None):
        net = mod.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    return {k: torch.full(v.shape, float(i), dtype=v.dtype) for i, (k, v) in enumerate(net.state_dict().items())}


def test_inception_constructor_gets_the_state_dict_through_its_hook():
    """Fast twin of the next test: the hook answers with the state dict, the path branch (torch-fidelity's
    unsafe torch.load) is never taken, and the module-wide name is restored afterwards."""
    import torch_fidelity.feature_extractor_inceptionv3 as mod

    class Probe:
        def __init__(self, name, layers, feature_extractor_weights_path):
            assert feature_extractor_weights_path is None
            self.state = mod.load_state_dict_from_url(mod.URL_INCEPTION_V3)

    state = {"fc.weight": torch.ones(2)}
    assert fidelity._inception_from_state_dict(Probe, "inception-v3-compat", ["2048"], state).state is state
    assert mod.load_state_dict_from_url is torch.hub.load_state_dict_from_url


@pytest.mark.slow   # builds torch-fidelity's real InceptionV3 (24M parameters) around a 95 MB file
def test_inception_gets_the_weights_file_through_weights_only(tmp_path, monkeypatch):
    state = _stand_in_inception_state()
    f = tmp_path / "weights-inception.pth"
    torch.save(state, f)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    ev = make_evaluator("inception", "cifar10", 1000, weights_path=f, cache_dir=tmp_path)   # validates the file
    net = ev._extractor()
    assert calls and all(w is True for w in calls), calls
    got = net.state_dict()
    assert set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)
    # the module-wide hook is restored after construction
    import torch_fidelity.feature_extractor_inceptionv3 as mod
    assert mod.load_state_dict_from_url is torch.hub.load_state_dict_from_url


# ---------------------------------------------------------------- the shared real-feature cache

@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A freshly extracted real side, and its arrays: what every recompute must reproduce."""
    ev = make_evaluator("fmnist-classifier", "fashion_mnist", N, real_split="test",
                        cache_dir=tmp_path_factory.mktemp("clean"))
    ev.prepare()
    arrays, why = read_verified_npz(ev.cache_file)
    assert arrays is not None, why
    return ev, arrays


def _fresh(cache_dir):
    return make_evaluator("fmnist-classifier", "fashion_mnist", N, real_split="test", cache_dir=cache_dir)


def _assert_recomputed(ev, clean_arrays):
    arrays, why = read_verified_npz(ev.cache_file)
    assert arrays is not None, why
    assert set(arrays) == set(clean_arrays)
    for k in clean_arrays:
        np.testing.assert_array_equal(arrays[k], clean_arrays[k])


def test_cache_is_npz_with_a_sha256_sidecar(clean):
    ev, _ = clean
    names = sorted(p.name for p in ev.cache_root.iterdir() if not p.name.endswith(".lock"))
    assert names == [ev.cache_file.name, ev.cache_file.name + ".sha256"]
    assert not list(ev.cache_root.glob("*.pt"))   # torch-fidelity's own (unpickled) cache is not used


@pytest.mark.parametrize("fmt,sidecar", [("zip", "matching"), ("pickle", "matching"), ("zip", "stale"),
                                         ("pickle", "absent")])
def test_crafted_cache_file_is_recomputed_not_loaded(tmp_path, clean, fmt, sidecar):
    """The attacker may write the sidecar too ('matching'): the hash then passes, and np.load with
    allow_pickle=False still reads no code; the entry is not ours, so it is recomputed."""
    _, clean_arrays = clean
    ev = _fresh(tmp_path)
    ev.cache_root.mkdir(parents=True)
    marker = tmp_path / "pwned"
    crafted_pt(ev.cache_file, marker, fmt)
    side = fidelity._sidecar(ev.cache_file)
    if sidecar == "matching":
        import hashlib
        side.write_text(hashlib.sha256(ev.cache_file.read_bytes()).hexdigest() + "\n")
    elif sidecar == "stale":
        side.write_text("0" * 64 + "\n")
    with pytest.warns(UserWarning, match="recomputing"):
        ev.prepare()
    assert not marker.exists()
    _assert_recomputed(ev, clean_arrays)


def test_crafted_files_at_torch_fidelitys_cache_names_are_ignored(tmp_path, clean):
    """Where torch-fidelity 0.4.0 looked for (and unpickled) the real features and FID statistics."""
    _, clean_arrays = clean
    ev = _fresh(tmp_path)
    ev.cache_root.mkdir(parents=True)
    marker = tmp_path / "pwned"
    stem = f"{ev.real_name}-{ev.ext.fidelity_name}"
    for tail in ("features-logits", "features-penultimate", "stat-fid-penultimate"):
        crafted_pt(ev.cache_root / f"{stem}-{tail}.pt", marker)
    ev.prepare()
    assert not marker.exists()
    _assert_recomputed(ev, clean_arrays)


def test_tampered_arrays_fail_the_hash_and_are_recomputed(tmp_path, clean):
    """A well-formed .npz with other figures (a corrupted or swapped entry) is not trusted either."""
    _, clean_arrays = clean
    ev = _fresh(tmp_path)
    ev.cache_root.mkdir(parents=True)
    write_verified_npz(ev.cache_file, clean_arrays)
    forged = {**clean_arrays, "fid_mu": clean_arrays["fid_mu"] + 1}
    side = fidelity._sidecar(ev.cache_file).read_bytes()
    write_verified_npz(ev.cache_file, forged)
    fidelity._sidecar(ev.cache_file).write_bytes(side)   # the old sidecar beside the new file
    with pytest.warns(UserWarning, match="sha256"):
        ev.prepare()
    _assert_recomputed(ev, clean_arrays)


def test_a_verified_cache_is_used_without_reading_images(tmp_path, clean, monkeypatch):
    _, clean_arrays = clean
    ev = _fresh(tmp_path)
    ev.cache_root.mkdir(parents=True)
    write_verified_npz(ev.cache_file, clean_arrays)
    monkeypatch.setattr(fidelity, "load_images", lambda *a, **k: pytest.fail("cache not used"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev.prepare()
    assert ev.real_classes_covered() == ev._covered(torch.from_numpy(clean_arrays["isc"]))


def test_an_evaluation_only_loads_with_weights_only(clean, monkeypatch):
    """The class of bug, not one file: every torch.load an evaluation makes (weights included, as
    the extractor is built on the first call) passes weights_only=True."""
    ev = _fresh(clean[0].cache_root.parent)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    g = torch.Generator().manual_seed(0)
    m = ev.evaluate(lambda n: torch.rand(n, 1, 32, 32, generator=g) * 2 - 1)
    assert calls and all(w is True for w in calls), calls
    assert m["classes_covered_real"] == ev.real_classes_covered() > 0
