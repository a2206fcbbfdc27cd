"""Objective families by name. Importing the modules registers them; a plugin registers its own
with the same `register` (docs/extending.md)."""
from . import fgan, gan, lsgan, sngan, wgan  # noqa: F401
from .base import OBJECTIVES, Objective, Settings, family_of, get_objective, parse_settings, register

__all__ = ["OBJECTIVES", "Objective", "Settings", "family_of", "get_objective", "parse_settings", "register"]
