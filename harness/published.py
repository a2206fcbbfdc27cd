"""Published robustness tables, printed beside ours when an experiment `reproduces` a study.

Only numbers copied from the source are here: Gulrajani et al. 2017 (arXiv:1704.00028),
appendix Table 5, every threshold from 1.0 to 9.0 in steps of 0.5 (the main text's
Table 2 quotes the rows 1, 3, 5, 7 and 9). Each row sums to the 200 architectures
(tests/study/test_results.py checks it).
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


def published_pair_table(key: str) -> PublishedPairTable:
    if key not in PUBLISHED:
        raise UnknownName(f"unknown published study {key!r}; valid: {sorted(PUBLISHED)}")
    return PUBLISHED[key]
