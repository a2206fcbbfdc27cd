"""Mode-collapse remedies by name. Importing the modules registers them; a plugin registers its own
with the same `register` (docs/extending.md)."""
from . import generator_losses, inputs  # noqa: F401
from .base import REMEDIES, Method, Remedy, parse_method, register, split_method

__all__ = ["REMEDIES", "Method", "Remedy", "parse_method", "register", "split_method"]
