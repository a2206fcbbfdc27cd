"""Registries' one rule: a name belongs to one definition.

Every registry (objectives, remedies, penalties, datasets, evaluators) claims names through
`claim`, built-ins and plugins alike, so a plugin never replaces a built-in (or another
plugin's name) silently. A leaf module: the registries import it, and it imports none of them.
"""
from __future__ import annotations

import re

from .errors import UserError

# A registered name: it goes into method strings (`OBJECTIVE@S=V+PART:ARG`), trial ids, folder
# names and MLflow params, so it is a plain word without the method syntax's '@', '+' and ':'.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class DuplicateName(UserError, ValueError):
    """A name registered twice by two different definitions; the message names both."""


def _definition(entry) -> object:
    """What identifies an entry's definition: the class, or the function a spec wraps."""
    return getattr(entry, "definition", None) or entry


def _where(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def check_name(name, kind: str) -> str:
    """A usable registry name, or a ValueError saying why not."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{kind} name {name!r}: use letters, digits, '.', '_' and '-', starting with a letter or "
                         "digit (a name goes into method strings, trial ids and MLflow params)")
    return name


def check_free(registry: dict, name: str, entry, kind: str) -> None:
    """Refuse `name` if another definition holds it (DuplicateName, naming both); see `claim`."""
    check_name(name, kind)
    old = registry.get(name)
    if old is not None and old is not entry:
        before, now = _definition(old), _definition(entry)
        if _where(before) != _where(now):
            raise DuplicateName(f"{kind} {name!r} is registered already (by {_where(before)}); {_where(now)} "
                                "cannot take the name too: choose another")


def claim(registry: dict, name: str, entry, kind: str) -> None:
    """registry[name] = entry, refusing a name that another definition holds already.

    The same definition registered again (its module and qualified name unchanged: a plugin
    module imported again after its file changed, importlib.reload) replaces the old entry; a
    different one is a DuplicateName naming both, so a plugin never replaces a built-in (or
    another plugin's name) silently."""
    check_free(registry, name, entry, kind)
    registry[name] = entry
