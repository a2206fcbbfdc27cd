"""Metrics of a conditional generator: does G(z, y) give what y asks for?

`ConditionalEvaluator` wraps an evaluator: it asks G for balanced labels (sample i for
class i mod K), hands the samples to the wrapped evaluator unchanged (IS/FID/KID or the
exact 2D metrics, of the label-marginal), and adds the label metrics of `LABEL_METRICS`:

- 2D mixtures (`toy2d`): `on_requested_mode`, the share of samples that are high quality
  (within 3 std, the toy2d rule) on the mode they were asked for (chance: 1/K of the
  high-quality share); `on_requested_mode_worst`, the same for the worst-served label;
  `nearest_is_requested`, the share whose nearest mode is the requested one, quality aside.
- Fashion-MNIST (`fmnist-classifier`): `cond_accuracy`, the shipped classifier's accuracy on
  the generated images against the requested labels (its accuracy on real test images,
  0.91, is the ceiling); `is_per_class_mean`, the Inception Score (Salimans et al. 2016)
  computed over the samples of each requested class, averaged over classes: 1 when the
  classifier sees every sample of a class as the same class, up to K when they spread over
  classes, so with labels honoured it is low (real test images: 1.31). Not a quality score.

Conditional measures after the conditional GAN literature: classifier accuracy on
generated samples (Odena et al. 2017, AC-GAN, sec. 4.1), per-class scores (Miyato &
Koyama 2018 report intra-class FID).
"""

from __future__ import annotations

import torch

from harness.data import mixture_modes, to_uint8
from harness.evaluate.base import CHUNK, Evaluator, SampleFn, balanced_labels
from harness.evaluate.metrics import HIGHER, LOWER, register_metric

# relative=False: the real data asks for no label, so it has no value to be a fraction of
register_metric("on_requested_mode", direction=HIGHER, range=(0, 1), group="label", relative=False, order=60,
                description="share of samples high-quality on the mode their label asked for (chance: 1/K)")
register_metric("on_requested_mode_worst", direction=HIGHER, range=(0, 1), group="label", relative=False, order=61,
                description="on_requested_mode of the worst-served label")
register_metric("nearest_is_requested", direction=HIGHER, range=(0, 1), group="label", relative=False, order=62,
                description="share of samples whose nearest mode is the one asked for, quality aside")
register_metric("cond_accuracy", direction=HIGHER, range=(0, 1), group="label", relative=False, order=63,
                description="the shipped classifier's accuracy against the requested labels (real test images: 0.91)")
# low when every sample of a requested class looks like one class (real test images: 1.31): labels honoured
register_metric("is_per_class_mean", direction=LOWER, range=(1, "n_classes"), group="label", relative=False, order=64,
                description="Inception score within each requested class, mean over classes; not a quality score")


def requested_mode_metrics(x: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor, std: float,
                           hq_stds: float = 3.0) -> dict[str, float]:
    x = x.to(torch.float32)
    dmin, nearest = torch.cdist(x, centers.to(x)).min(dim=1)
    finite = torch.isfinite(x).all(dim=1)
    asked = (nearest == labels) & finite
    on = asked & (dmin <= hq_stds * std)
    per_label = [on[labels == k].double().mean().item() for k in labels.unique()]
    return {"on_requested_mode": float(on.double().mean()), "on_requested_mode_worst": float(min(per_label)),
            "nearest_is_requested": float(asked.double().mean())}


def inception_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))), p(y) the mean of the rows (one split)."""
    probs = probs.double()
    marginal = probs.mean(0, keepdim=True)
    return float(torch.exp((torch.xlogy(probs, probs) - torch.xlogy(probs, marginal)).sum(1).mean()))


@torch.no_grad()
def classifier_label_metrics(net: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor,
                             device="cpu") -> dict[str, float]:
    """Accuracy against the requested labels and the mean per-class IS, on the images as the
    fidelity evaluator sees them (rounded to uint8)."""
    probs = torch.cat([net(to_uint8(chunk).to(device).float().div_(127.5).sub_(1.0)).float().softmax(1).cpu()
                       for chunk in x.split(CHUNK)])
    per_class = [inception_score(probs[labels == k]) for k in labels.unique()]
    return {"cond_accuracy": float((probs.argmax(1) == labels).double().mean()),
            "is_per_class_mean": float(sum(per_class) / len(per_class))}


class OnRequestedMode:
    names = ("on_requested_mode", "on_requested_mode_worst", "nearest_is_requested")

    def __init__(self, base):
        self.centers, self.std = mixture_modes(base.dataset)

    def __call__(self, x, labels):
        return requested_mode_metrics(x, labels, self.centers, self.std)


class ClassifierAgreement:
    names = ("cond_accuracy", "is_per_class_mean")

    def __init__(self, base):
        from harness.evaluate.classifier import load_classifier   # late: pulls in torch-fidelity
        self.device = base.device
        self.net = load_classifier(base.weights_path, device=base.device)

    def __call__(self, x, labels):
        return classifier_label_metrics(self.net, x, labels, self.device)


# evaluator name -> its label metrics; config.py rejects `conditional: true` with any other
LABEL_METRICS = {"toy2d": OnRequestedMode, "fmnist-classifier": ClassifierAgreement}


class ConditionalEvaluator(Evaluator):
    """The wrapped evaluator's metrics plus the label metrics; `evaluate` takes
    `sample_fn(labels) -> samples` (train.Session.sampler of a conditional session)."""

    def __init__(self, base: Evaluator, n_classes: int):
        if base.name not in LABEL_METRICS:
            raise ValueError(f"evaluator {base.name!r} has no conditional metrics; valid: {sorted(LABEL_METRICS)}")
        self.base, self.n_classes = base, n_classes
        self.name, self.headline, self.n_samples = base.name, base.headline, base.n_samples
        self.label_metrics = LABEL_METRICS[base.name](base)
        # a conditional D judges (x, y) pairs: no critic, so none of the metrics that need one
        self.metric_names = tuple(n for n in base.metric_names if n not in base.critic_metrics) + \
            self.label_metrics.names

    @torch.no_grad()
    def evaluate(self, sample_fn: SampleFn) -> dict[str, float]:
        labels = balanced_labels(self.n_samples, self.n_classes)
        x = torch.cat([sample_fn(y).detach().to("cpu", torch.float32) for y in labels.split(CHUNK)])
        offset = [0]

        def replay(n):   # the same samples to the wrapped evaluator, in its chunks
            offset[0] += n
            return x[offset[0] - n: offset[0]]
        return {**self.base.evaluate(replay), **self.label_metrics(x, labels)}

    def collapsed(self, metrics: dict[str, float]) -> bool:
        return self.base.collapsed(metrics)
