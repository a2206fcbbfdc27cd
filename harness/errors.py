"""Errors a user can fix: the command line, the experiment file, a name, the data, an evaluator.

Every one derives from `UserError`, and the CLI turns any `UserError` into exit status 2
and one line that names what to change. Anything else is a bug or a crash and keeps its
traceback. The kinds also derive from the builtin a caller would expect (`KeyError` for a
registry lookup, `ValueError` for a bad value), so library code can catch them either way.
"""


class UserError(Exception):
    """Anything the user can fix by changing the command, the experiment file or the data."""


class UsageError(UserError):
    """A bad command line, or a command that does not fit the store's state (resume, shards)."""


class ConfigError(UserError, ValueError):
    """A bad experiment: `field` is the dotted path of the offending key."""

    MAX_CHARS = 2000   # a message quotes values: bounded, whatever the value (config._short cuts them first)

    def __init__(self, field: str, message: str):
        self.field = field if len(field) <= 200 else field[:200] + "..."
        text = f"{self.field}: {message}"
        super().__init__(text if len(text) <= self.MAX_CHARS else text[: self.MAX_CHARS] + f"... ({len(text)} characters)")


class UnknownName(UserError, KeyError):
    """A registry lookup that failed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError alone would print the repr of its argument
        return str(self.args[0]) if self.args else ""


class DatasetNotFound(UserError, RuntimeError):
    """A dataset that is not on disk and cannot be fetched; the message names the fix."""


class EvaluatorUnavailable(UserError, RuntimeError):
    """The evaluator exists but cannot run here (e.g. no Inception weights offline); says how to fix it."""
