"""The architecture space of the WGAN-GP robustness study (Gulrajani et al. 2017, Table 1).

An `Arch` is one point of the space. It is frozen and hashable so that the same
architecture can be trained with every objective (paired comparisons) and so that its
id is stable across machines and Python versions.

Depth means the number of weight layers of a network, counted as in DCGAN:
depth 4 is the DCGAN baseline (G: a linear layer to 4x4 and three stride-2 transposed
convolutions to 32x32; D: three stride-2 convolutions from 32x32 to 4x4 and a linear
layer). Depth d > 4 adds d - 4 stride-1 3x3 convolutions (each with the network's norm
and nonlinearity), dealt round-robin to the three resolutions starting at the lowest
one for G and the highest for D. The paper leaves depth undefined; this reading keeps
every depth a DCGAN at heart.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
from dataclasses import dataclass, fields
from .errors import UnknownName

# Table 1 of the WGAN-GP paper. "softplus" is softplus(2x+2)/2 - 1.
NONLINEARITIES = ("relu", "lrelu", "softplus", "tanh")
DEPTHS = (4, 8, 12, 20)
NORMS = (True, False)
FILTERS = (32, 64, 128)

FACTORS: dict[str, tuple] = {
    "nonlin_g": NONLINEARITIES,
    "nonlin_d": NONLINEARITIES,
    "depth_g": DEPTHS,
    "depth_d": DEPTHS,
    "norm_g": NORMS,
    "norm_d": NORMS,
    "filters_g": FILTERS,
    "filters_d": FILTERS,
}
FAMILIES_G = ("dcgan", "mlp", "resnet")
FAMILIES_D = ("dcgan", "resnet")
# presets only: PixelCNN-style tanh(a) * sigmoid(b); maxout over 5 pieces (PacGAN's 2D D)
EXTRA_NONLINEARITIES = ("gated", "maxout")


@dataclass(frozen=True)
class Arch:
    """One architecture: the eight factors, plus the family knobs the presets need."""

    nonlin_g: str = "relu"
    nonlin_d: str = "lrelu"
    depth_g: int = 4
    depth_d: int = 4
    norm_g: bool = True
    norm_d: bool = True
    filters_g: int = 64
    filters_d: int = 64
    family_g: str = "dcgan"
    family_d: str = "dcgan"
    constant_filters_g: bool = False
    preset: str | None = None

    def __post_init__(self):
        for name, allowed in FACTORS.items():
            value = getattr(self, name)
            if name.startswith("nonlin"):
                allowed = allowed + EXTRA_NONLINEARITIES
            if name.startswith(("depth", "filters")) and self.preset is not None:
                if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                    continue
            if value not in allowed or type(value) is not type(allowed[0]):
                raise ValueError(f"{name}: {value!r} is not one of {list(allowed)}")
        if self.family_g not in FAMILIES_G:
            raise ValueError(f"family_g: {self.family_g!r} is not one of {list(FAMILIES_G)}")
        if self.family_d not in FAMILIES_D:
            raise ValueError(f"family_d: {self.family_d!r} is not one of {list(FAMILIES_D)}")

    @property
    def id(self) -> str:
        """Eight hex digits of a hash of the canonical JSON: stable everywhere."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return (self.preset + "-" if self.preset else "") + hashlib.sha1(canonical.encode()).hexdigest()[:8]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Arch":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown architecture field(s) {sorted(unknown)}; valid: {sorted(known)}")
        return cls(**d)

    def describe(self) -> str:
        if self.preset:
            return self.preset
        bn = lambda on: "norm" if on else "nonorm"
        return (f"G[{self.nonlin_g} d{self.depth_g} {bn(self.norm_g)} f{self.filters_g}] "
                f"D[{self.nonlin_d} d{self.depth_d} {bn(self.norm_d)} f{self.filters_d}]")


def enumerate_space(restrict: dict[str, list] | None = None) -> list[Arch]:
    """Every point of the grid (9,216 unrestricted), in a fixed order."""
    values = {k: tuple(restrict.get(k, v)) if restrict else v for k, v in FACTORS.items()}
    names = list(values)
    return [Arch(**dict(zip(names, combo))) for combo in itertools.product(*values.values())]


def sample_space(n: int, seed: int, restrict: dict[str, list] | None = None) -> list[Arch]:
    """n distinct architectures, the same for the same seed on every machine.

    Draws indices into the enumerated grid with Python's own Mersenne Twister, which
    (unlike torch or numpy defaults) is specified and stable across platforms.
    """
    grid = enumerate_space(restrict)
    if n > len(grid):
        raise ValueError(f"space.n: asked for {n} distinct architectures, the space has {len(grid)}")
    rng = random.Random(seed)
    return [grid[i] for i in rng.sample(range(len(grid)), n)]


# The seven settings of the paper's LSUN bedrooms study (section 5.2, Figure 3).
PRESETS: dict[str, Arch] = {
    "dcgan": Arch(preset="dcgan"),
    "g-nobn-constfilters": Arch(norm_g=False, constant_filters_g=True, preset="g-nobn-constfilters"),
    # An MLP layer is 4 x base filters wide, so 128 gives the paper's 512 units.
    "g-mlp512": Arch(family_g="mlp", nonlin_g="relu", depth_g=4, filters_g=128, norm_g=False,
                     preset="g-mlp512"),
    "no-norm": Arch(norm_g=False, norm_d=False, preset="no-norm"),
    "gated": Arch(nonlin_g="gated", nonlin_d="gated", preset="gated"),
    "tanh": Arch(nonlin_g="tanh", nonlin_d="tanh", preset="tanh"),
    "resnet101": Arch(family_g="resnet", family_d="resnet", depth_g=101, depth_d=101, preset="resnet101"),
    # PacGAN's 2D networks (Lin et al. 2018, sec. 4 / appendix): G four 400-unit ReLU layers
    # with batch norm and a linear output (depth 5, 4 x 100 units); D three maxout layers of
    # 200 units x 5 pieces and a linear output (depth 4, 4 x 50 units), no normalization.
    # For the 2D mixtures only (an MLP D is what the 2D data always gets).
    "pacgan-2d": Arch(family_g="mlp", nonlin_g="relu", depth_g=5, filters_g=100, norm_g=True,
                      nonlin_d="maxout", depth_d=4, filters_d=50, norm_d=False, preset="pacgan-2d"),
}


def get_preset(name: str) -> Arch:
    if name not in PRESETS:
        raise UnknownName(f"unknown preset {name!r}; valid: {sorted(PRESETS)}")
    return PRESETS[name]


def resolve_arch(arch_id: str) -> Arch:
    """An id (or preset name) back to its Arch, by searching the grid and the presets."""
    if arch_id in PRESETS:
        return PRESETS[arch_id]
    for arch in list(PRESETS.values()) + enumerate_space():
        if arch.id == arch_id:
            return arch
    from .hints import harness_command
    raise UnknownName(f"no architecture has id {arch_id!r}; list some with `{harness_command('space', '--sample', '5')}`")
