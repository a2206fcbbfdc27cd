"""The interface every objective family implements, and the registry that names them.

An objective owns its losses and its published training settings (optimizer, n_critic,
what "D normalization on" means), so that a trial needs nothing but the name.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, UnknownName, UserError
from ..penalties import Penalty
from ..registry import claim
from ..remedies import split_method


@dataclass(frozen=True)
class Settings:
    optimizer: str = "adam"          # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5               # Adam only
    beta2: float = 0.999             # Adam only
    n_critic: int = 1                # D steps per G step
    d_norm: str = "batch"            # what "norm_d on" means: batch | layer | none
    spectral_norm: bool = False      # spectral norm on every D weight layer
    clip: float = 0.0                # >0: clip every D parameter to [-clip, clip] (wgan-clip only)
    gp_weight: float = 0.0           # >0: gradient penalty on interpolates (wgan-gp only; elsewhere +gp:W)
    # WGAN-GP appendix B: weight decay 1e-3 on D when D is normalized, "this helps both
    # algorithms" (GAN as well): the default for every objective, applied only when D
    # has a norm layer (arch.norm_d on and d_norm not none).
    d_weight_decay: float = 1e-3
    lr_decay: str = "none"           # none | linear (to 0 over the budget, as WGAN-GP's CIFAR runs)

    CHOICES = {"optimizer": ("adam", "rmsprop"), "d_norm": ("batch", "layer", "none"),
               "lr_decay": ("none", "linear")}

    def __post_init__(self):
        for name, allowed in self.CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: {getattr(self, name)!r} is not one of {list(allowed)}")
        for name in ("lr_g", "lr_d", "n_critic"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name}: must be a finite number > 0, got {getattr(self, name)}")
        for name in ("clip", "gp_weight", "d_weight_decay"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name}: must be a finite number >= 0, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name}: must be in [0, 1), got {getattr(self, name)}")

    def replace(self, **overrides) -> "Settings":
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - valid
        if unknown:
            raise UnknownName(f"unknown objective setting(s) {sorted(unknown)}; valid: {sorted(valid)}")
        return dataclasses.replace(self, **overrides)


# Settings that only some families read (each family names them in `reads`); the others are
# read by every family. A family given one it does not read refuses it rather than log a value
# that changes nothing. Each maps to the method part that does the job on any objective, if any.
FAMILY_SETTINGS = {"clip": None, "gp_weight": "gp"}


class Objective:
    """Losses take D's raw outputs (logits / critic values), shape (N, 1)."""

    name: str = ""
    defaults: Settings = Settings()
    reads: frozenset[str] = frozenset()     # which of FAMILY_SETTINGS this family reads
    # True: G's loss compares fakes with reals (relativistic losses), so the G step also runs
    # D on a real batch, without a graph, and calls g_loss(d_fake, d_real)
    needs_real_in_g_step: bool = False

    def __init__(self, **overrides):
        self._refuse_unread(overrides)
        self.settings = self.defaults.replace(**overrides)
        self.method = self.name      # the objective with its remedies, as named in the experiment
        self.remedies = []           # harness.remedies, applied by step.GANStep
        self.penalties = []          # harness.penalties named in the method, added to D's loss

    def _refuse_unread(self, overrides: dict) -> None:
        """A ConfigError (field: the setting) for a family-specific setting this family ignores."""
        for key in sorted(set(overrides) & set(FAMILY_SETTINGS) - self.reads):
            readers = sorted(n for n, cls in OBJECTIVES.items() if key in cls.reads)
            part, value = FAMILY_SETTINGS[key], overrides[key]
            value = f"{value:g}" if isinstance(value, (int, float)) else value
            fix = (f"; a penalty on any objective is a part of the method: {self.name}+{part}:{value} "
                   f"(python -m harness list penalties)" if part else "")
            raise ConfigError(key, f"{self.name} does not read it (only {', '.join(readers)} does), so it would be "
                                   f"logged and change nothing{fix}")

    def compose(self, method: str, remedies: list, penalties: list[Penalty]) -> "Objective":
        """The objective as the method `method` names it, with its remedies and penalties; a
        penalty the family applies already (wgan-gp's gp) is an error, not a second copy."""
        builtin = {p.name for p in self.builtin_penalties()}
        for p in penalties:
            if p.name in builtin:
                setting = next(k for k, part in FAMILY_SETTINGS.items() if part == p.name and k in self.reads)
                raise ValueError(f"{self.name} applies the penalty {p.name!r} already, weighted by its setting "
                                 f"{setting}: write {self.name}@{setting}={p.arg:g} instead of +{p.label}")
        self.method, self.remedies, self.penalties = method, list(remedies), list(penalties)
        return self

    def builtin_penalties(self) -> list[Penalty]:
        """Penalties that are part of the published objective (wgan-gp's), from its settings."""
        return []

    @property
    def all_penalties(self) -> list[Penalty]:
        """Every penalty D's loss gets: the family's own, then the method's, in the method's order."""
        return self.builtin_penalties() + self.penalties

    def d_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        """G's loss from D's outputs on generated samples; with `needs_real_in_g_step`,
        g_loss(d_fake, d_real) with D's outputs on a real batch too (constants for G)."""
        raise NotImplementedError

    def diagnostics(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """What D's outputs say about the game (logged at the loop's log points): D's mean
        output on real and generated batches by default; each family says more."""
        return {"d_mean_real": d_real.mean(), "d_mean_fake": d_fake.mean()}

    def d_probability(self, output: torch.Tensor) -> torch.Tensor | None:
        """D's output mapped to the quantity whose optimum is D*(x) = p_data / (p_data + p_g), or
        None where the objective has no such optimum (the default: Wasserstein critics, hinge).
        Evaluators compare it with D* (evaluate/kde.py) where p_data and p_g are known."""
        return None

    def penalty(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """The extra D loss terms that need D itself (harness.penalties), summed, or None."""
        terms = [p(D, real, fake) for p in self.all_penalties]
        return sum(terms[1:], terms[0]) if terms else None

    @torch.no_grad()
    def after_d_step(self, D: nn.Module) -> None:
        """Constraint enforcement after each D update (weight clipping)."""

    def d_is_normalized(self, norm_d: bool) -> bool:
        """Whether D has norm layers: the architecture asks for them and the objective has a kind."""
        return norm_d and self.settings.d_norm != "none"

    def optimizers(self, G: nn.Module, D: nn.Module, d_has_norm: bool):
        """Adam runs fused (one kernel for every parameter) where torch has the kernel: its
        many small per-tensor kernels were a visible share of a CPU iteration in the profiler
        (`harness bench --only cpu-speed` measures the harness's speed with it)."""
        s = self.settings
        wd = s.d_weight_decay if d_has_norm else 0.0
        make = {  # Settings has already checked the name
            "adam": lambda params, lr, decay: torch.optim.Adam(params, lr=lr, betas=(s.beta1, s.beta2),
                                                               weight_decay=decay, fused=_fusable(params)),
            "rmsprop": lambda params, lr, decay: torch.optim.RMSprop(params, lr=lr, weight_decay=decay),
        }[s.optimizer]
        return make(list(G.parameters()), s.lr_g, 0.0), make(list(D.parameters()), s.lr_d, wd)


def _fusable(params) -> bool | None:
    """Fused Adam where every parameter lives on a CPU or CUDA device (not the meta device
    the dry run prices trials on); None leaves torch's default (foreach) elsewhere."""
    return True if params and all(p.device.type in ("cpu", "cuda") for p in params) else None


OBJECTIVES: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: the objective family `cls.name`, for experiments, `list objectives` and
    every report. Built-ins and plugins (harness/plugins.py, docs/extending.md) register alike;
    a name another definition holds already is refused (registry.DuplicateName), as is a name
    the method syntax cannot carry ('@', '+', ':')."""
    claim(OBJECTIVES, cls.name, cls, "objective")
    return cls


# How a setting's text in a method string becomes its value, by the Settings field's type.
_PARSERS = {int: int, float: float, str: str,
            bool: lambda t: {"true": True, "false": False}[t.lower()]}


def family_of(method: str) -> str:
    """The objective family a method is built on: 'gan-minimax@n_critic=25+pack:2' -> 'gan-minimax'
    (what the experiment's objective_overrides are keyed by)."""
    return method.split("+")[0].split("@")[0]


def parse_settings(text: str) -> tuple[str, dict]:
    """`OBJECTIVE[@SETTING=VALUE]...` -> (objective, {setting: value}), e.g. 'gan-minimax@n_critic=25'
    -> ('gan-minimax', {'n_critic': 25}): one objective at several settings as different methods
    of one study, named by the whole string in trial ids, MLflow and reports. '@' rather than ','
    between settings, so that the string stays one item of a YAML flow list. Names and types are
    checked here; ranges by Settings when the objective is built. Errors are ValueErrors."""
    name, *parts = text.split("@")
    hints = typing.get_type_hints(Settings)
    settings = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or not key or not value:
            raise ValueError(f"{text!r}: a setting is written @NAME=VALUE, got {'@' + part!r}")
        if key not in hints:
            raise UnknownName(f"{text!r}: unknown objective setting {key!r}; valid: {sorted(hints)}")
        if key in settings:
            raise ValueError(f"{text!r}: setting {key!r} is given twice")
        kind = hints[key]
        try:
            settings[key] = _PARSERS[kind](value)
        except (ValueError, KeyError):
            raise ValueError(f"{text!r}: {key} must be a{'n' if kind is int else ''} {kind.__name__}, "
                             f"got {value!r}") from None
    return name, settings


def get_objective(name: str, **overrides) -> Objective:
    """An objective by name, or a method: `OBJECTIVE[@SETTING=VALUE]...[+REMEDY[:ARG]]...[+PENALTY[:WEIGHT]]...`
    (settings: parse_settings; remedies: harness.remedies; penalties: harness.penalties). Settings
    in the name take precedence over `overrides` (the experiment's, for every method of the
    family): they are more specific. A bad method is a UserError (exit 2 from the CLI): an
    UnknownName, or a ConfigError, a ValueError as before, that quotes the method."""
    try:
        base, remedies, penalties = split_method(name)
        family, settings = parse_settings(base)
        if family not in OBJECTIVES:
            raise UnknownName(f"unknown objective {family!r}; valid: {sorted(OBJECTIVES)}")
        return OBJECTIVES[family](**{**overrides, **settings}).compose(name, remedies, penalties)
    except UserError:
        raise
    except ValueError as err:
        raise ConfigError("objective", f"{name!r}: {err}") from None
