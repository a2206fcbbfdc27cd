"""Mode-collapse remedies by name. Importing the modules registers them."""
from . import generator_losses, inputs  # noqa: F401
from .base import REMEDIES, Remedy, parse_method

__all__ = ["REMEDIES", "Remedy", "parse_method"]
