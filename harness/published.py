"""Published robustness tables, printed beside ours when an experiment `reproduces` a study.

Only numbers copied from the source are here: Gulrajani et al. 2017 (arXiv:1704.00028),
appendix Table 5, every threshold from 1.0 to 9.0 in steps of 0.5 (the main text's
Table 2 quotes the rows 1, 3, 5, 7 and 9). Each row sums to the 200 architectures
(tests/study/test_results.py checks it). Mode-collapse figures on the 2D mixtures: PacGAN
Table 1 and VEEGAN Table 1 as quoted in ../shared/DESIGN.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownName


@dataclass(frozen=True)
class PublishedPairTable:
    source: str
    setting: str
    a: str                     # objective names as the harness spells them
    b: str
    n: int                     # architectures per objective
    rows: dict                 # threshold -> (only a, only b, both succeeded, both failed)


PUBLISHED: dict[str, PublishedPairTable] = {
    "gulrajani2017": PublishedPairTable(
        source="Gulrajani et al. 2017, Improved Training of Wasserstein GANs, sec. 5.1 and appendix Table 5",
        setting="200 random architectures (Table 1 space), 32x32 ImageNet, 100K generator iterations, "
                "success = Inception score above the threshold",
        a="gan", b="wgan-gp", n=200,
        rows={
            1.0: (0, 8, 192, 0),
            1.5: (0, 50, 150, 0),
            2.0: (0, 60, 140, 0),
            2.5: (0, 74, 125, 1),
            3.0: (1, 88, 110, 1),
            3.5: (0, 111, 86, 3),
            4.0: (1, 126, 67, 6),
            4.5: (0, 136, 55, 9),
            5.0: (0, 147, 42, 11),
            5.5: (0, 148, 32, 20),
            6.0: (0, 145, 21, 34),
            6.5: (1, 131, 11, 57),
            7.0: (1, 104, 5, 90),
            7.5: (2, 67, 3, 128),
            8.0: (1, 34, 0, 165),
            8.5: (0, 6, 0, 194),
            9.0: (0, 0, 0, 200),
        },
    ),
}


@dataclass(frozen=True)
class PublishedModeRow:
    """One method's mode-collapse figures on one 2D mixture, as printed (None: not reported)."""
    source: str
    label: str                 # the method as the paper names it
    modes: float
    modes_se: float | None
    hq_percent: float
    hq_se: float | None
    reverse_kl: float | None
    reverse_kl_se: float | None


_PACGAN = "PacGAN Table 1 (Lin et al. 2018; 10 runs, +- s.e.; 400 epochs of 100k points)"
_VEEGAN = "VEEGAN Table 1 (Srivastava et al. 2017; 5 runs)"

# harness method -> dataset -> published rows. PacGAN's ring is radius 1, std 0.01 (the
# harness's ring8 is the same shape scaled by 2); its grid is the harness's grid25.
PUBLISHED_MODES: dict[str, dict[str, list[PublishedModeRow]]] = {
    "gan": {
        "ring8": [PublishedModeRow(_PACGAN, "GAN", 6.3, 0.5, 98.2, 0.2, 0.45, 0.09),
                  PublishedModeRow(_VEEGAN, "GAN", 1, None, 99.3, None, None, None)],
        "grid25": [PublishedModeRow(_PACGAN, "GAN", 17.3, 0.8, 94.8, 0.7, 0.70, 0.07),
                   PublishedModeRow(_VEEGAN, "GAN", 3.3, None, 0.5, None, None, None)],
    },
    "gan+pack:2": {
        "ring8": [PublishedModeRow(_PACGAN, "PacGAN2", 7.9, 0.1, 95.6, 2.0, 0.07, 0.03)],
        "grid25": [PublishedModeRow(_PACGAN, "PacGAN2", 23.8, 0.7, 91.3, 0.8, 0.13, 0.04)],
    },
    "gan+pack:3": {
        "ring8": [PublishedModeRow(_PACGAN, "PacGAN3", 7.8, 0.1, 97.7, 0.3, 0.10, 0.02)],
        "grid25": [PublishedModeRow(_PACGAN, "PacGAN3", 24.6, 0.4, 94.2, 0.4, 0.06, 0.02)],
    },
    "gan+pack:4": {
        "ring8": [PublishedModeRow(_PACGAN, "PacGAN4", 7.8, 0.1, 95.9, 1.4, 0.07, 0.02)],
        "grid25": [PublishedModeRow(_PACGAN, "PacGAN4", 24.8, 0.2, 93.6, 0.6, 0.04, 0.01)],
    },
    "gan+unrolled:5": {
        "ring8": [PublishedModeRow(_VEEGAN, "Unrolled GAN (5 steps)", 7.6, None, 35.6, None, None, None)],
        "grid25": [PublishedModeRow(_VEEGAN, "Unrolled GAN (5 steps)", 23.6, None, 16, None, None, None)],
    },
}


def published_mode_rows(method: str, dataset: str) -> list[PublishedModeRow]:
    """The published mode-collapse rows for a harness method on a mixture (none: empty)."""
    return PUBLISHED_MODES.get(method, {}).get(dataset, [])


def published_pair_table(key: str) -> PublishedPairTable:
    if key not in PUBLISHED:
        raise UnknownName(f"unknown published study {key!r}; valid: {sorted(PUBLISHED)}")
    return PUBLISHED[key]
