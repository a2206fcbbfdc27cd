"""Published robustness tables, printed beside ours when an experiment `reproduces` a study.

Only numbers copied from the source are here. The WGAN-GP appendix table has every
threshold from 1.0 to 9.0 in steps of 0.5; the rows below are the ones quoted in
shared/DESIGN.md (1, 3, 5, 7, 9). Add the other rows from the paper itself, never by
interpolation.
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
        source="Gulrajani et al. 2017, Improved Training of Wasserstein GANs, sec. 5.1 and appendix B",
        setting="200 random architectures (Table 1 space), 32x32 ImageNet, 100K generator iterations, "
                "success = Inception score above the threshold",
        a="gan", b="wgan-gp", n=200,
        rows={
            1.0: (0, 8, 192, 0),
            3.0: (1, 88, 110, 1),
            5.0: (0, 147, 42, 11),
            7.0: (1, 104, 5, 90),
            9.0: (0, 0, 0, 200),
        },
    ),
}


def published_pair_table(key: str) -> PublishedPairTable:
    if key not in PUBLISHED:
        raise UnknownName(f"unknown published study {key!r}; valid: {sorted(PUBLISHED)}")
    return PUBLISHED[key]
