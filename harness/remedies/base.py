"""Mode-collapse remedies: composable with any objective, named in a method string.

A method is `OBJECTIVE[+REMEDY[:ARG]]...[+PENALTY[:WEIGHT]]...`, e.g. `gan+pack:4`,
`wgan-gp+instance-noise:0.1` or `gan+r1:10` (penalties: harness.penalties; remedies and
penalties share the names after '+', in any order); the whole string names the method in
trial ids, MLflow and every report table, so "gan vs gan+pack:4" is a pair table like any other.

A remedy changes the training step through a few hooks, each a no-op by default:
`d_shape` (what D's input looks like), `wrap_discriminator` (a layer added to D),
`d_input` (applied to every batch D sees, real and fake, in both updates) and `g_loss`
(replaces the objective's G loss). `step.GANStep` calls them; nothing else knows remedies.
"""
from __future__ import annotations

from typing import NamedTuple

from torch import nn

from ..errors import UnknownName
from ..penalties import PENALTIES, Penalty, claim_part_name
from ..registry import check_free


class Remedy:
    name: str = ""
    summary: str = ""               # one line for `python -m harness list remedies`
    arg_name: str | None = None     # what ARG means, or None: the remedy takes no argument
    arg_type: type = int
    default: float | int | None = None
    source: str = ""
    replaces_g_loss = False
    # D's output for x depends on x alone: False where D judges packs, noisy copies or the
    # batch's spread, so comparing D(x) with the optimal D*(x) has no meaning (train.Evaluation)
    d_judges_one_sample = True
    needs_real_in_g_step = False
    # samples that make one D input: the session draws batch_size x this many real samples and
    # z's per step, so D always sees batch_size inputs (PacGAN's convention, Lin et al. 2018)
    samples_per_input = 1
    # for harness.cost: extra D forward passes (in forward-pass equivalents) a G step costs
    extra_g_step_d_forwards = 0
    # conditional training (harness.step) passes labels beside x; a remedy must say it
    # works with them, or why not (the config error quotes it)
    conditional_ok = False
    conditional_problem = "not checked with labels"

    def __init__(self, arg=None):
        self.arg = self.default if arg is None else arg

    @property
    def label(self) -> str:
        return self.name if self.arg_name is None else f"{self.name}:{self.arg:g}"

    def validate(self) -> None:
        """Raise ValueError for an argument out of range."""

    def check(self, batch_size: int) -> str | None:
        """Why this remedy cannot run with the experiment, or None."""
        return None

    def d_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def wrap_discriminator(self, D: nn.Module) -> nn.Module:
        return D

    def d_input(self, x, progress: float):
        return x

    def g_loss(self, step, real, fake):
        raise NotImplementedError


def samples_per_input(remedies) -> int:
    """How many samples make one D input under these remedies (1 without packing)."""
    n = 1
    for remedy in remedies:
        n *= remedy.samples_per_input
    return n


REMEDIES: dict[str, type[Remedy]] = {}


def register(cls: type[Remedy]) -> type[Remedy]:
    """Class decorator: the remedy `cls.name`, named after '+' in a method. Built-ins and
    plugins register alike; a name another remedy or a penalty holds is refused."""
    check_free(REMEDIES, cls.name, cls, "remedy")
    claim_part_name(cls.name, "remedy")
    REMEDIES[cls.name] = cls
    return cls


def parse_part(text: str) -> Remedy | Penalty:
    """`NAME` or `NAME:ARG` after a '+' -> a Remedy or a Penalty (one namespace, so the name
    decides); a ValueError names what is wrong."""
    name, _, arg = text.partition(":")
    if name in REMEDIES:
        cls, kind = REMEDIES[name], "remedy"
    elif name in PENALTIES:
        cls, kind = PENALTIES[name], "penalty"
    else:
        raise UnknownName(f"unknown remedy or penalty {name!r}; remedies: {sorted(REMEDIES)}; "
                          f"penalties: {sorted(PENALTIES)}")
    if not arg:
        return cls()
    if cls.arg_name is None:
        raise ValueError(f"{kind} {name!r} takes no argument, got {text!r}")
    try:
        value = cls.arg_type(arg)
    except ValueError:
        what = cls.arg_type.__name__
        raise ValueError(f"{kind} {name!r}: {cls.arg_name.split(',')[0]} must be a{'n' if what == 'int' else ''} "
                         f"{what}, got {arg!r}") from None
    return cls(value)


class Method(NamedTuple):
    base: str                   # OBJECTIVE[@SETTING=VALUE]...
    remedies: list[Remedy]
    penalties: list[Penalty]


def split_method(method: str) -> Method:
    """'gan+pack:4+r1:10' -> Method('gan', [Pack(4)], [R1(10)]); checks names, arguments and
    combinations (each part at most once, one remedy at most that replaces G's loss)."""
    base, *texts = method.split("+")
    parts = [parse_part(p) for p in texts]
    names = [p.name for p in parts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{method!r}: {twice[0]!r} is named twice")
    remedies = [p for p in parts if isinstance(p, Remedy)]
    g_losses = [r.name for r in remedies if r.replaces_g_loss]
    if len(g_losses) > 1:
        raise ValueError(f"{method!r}: {' and '.join(g_losses)} both replace G's loss; use one")
    for p in parts:
        p.validate()
    return Method(base, remedies, [p for p in parts if isinstance(p, Penalty)])


def parse_method(method: str) -> tuple[str, list[Remedy]]:
    """'gan+pack:4+instance-noise' -> ('gan', [Pack(4), InstanceNoise(0.1)]): `split_method`
    without its penalties, for the callers that act on remedies only."""
    base, remedies, _ = split_method(method)
    return base, remedies
