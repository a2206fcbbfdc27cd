"""Mode-collapse remedies by name. Importing the modules registers them."""
from . import generator_losses, inputs  # noqa: F401
from .base import REMEDIES, Method, Remedy, parse_method, split_method

__all__ = ["REMEDIES", "Method", "Remedy", "parse_method", "split_method"]
