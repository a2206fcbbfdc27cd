"""MLflow client calls tried again when they fail for a reason that may pass (Retrying)."""
from __future__ import annotations

import functools
import sys
import time

RETRY_DELAYS_S = (1.0, 3.0, 9.0)   # waits between the tries of one store call (4 tries, ~13 s)
# MLflow errors that another try cannot fix (a missing run, a bad value): raised at once
PERMANENT_ERRORS = {"RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "INVALID_PARAMETER_VALUE",
                    "INVALID_STATE", "PERMISSION_DENIED", "UNAUTHENTICATED", "BAD_REQUEST"}


def is_permanent(err: BaseException) -> bool:
    from mlflow.exceptions import MlflowException
    return isinstance(err, MlflowException) and err.error_code in PERMANENT_ERRORS


class Retrying:
    """An MlflowClient whose calls are tried again, after RETRY_DELAYS_S, when they fail for a
    reason that may pass (sqlite's "database is locked", a server restarting, a dropped
    connection). Why: a sweep writes to the store for hours from Tune's callbacks, where an
    exception fails a trial or stops the sweep; a passing hiccup should cost a wait, not a
    trial's result. Each call is retried alone with the same arguments, so a retried metric
    batch carries the same timestamps and MLflow keeps one copy."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        if name.startswith("__") or name == "_client":    # pickling, copying: not the client's
            raise AttributeError(name)
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args, **kwargs):
            delays = list(RETRY_DELAYS_S)
            while True:
                try:
                    return attr(*args, **kwargs)
                except Exception as err:  # noqa: BLE001 - which errors pass is not knowable in advance
                    if not delays or is_permanent(err):
                        raise
                    delay = delays.pop(0)
                    print(f"MLflow {name} failed ({type(err).__name__}: {str(err)[:300]}); "
                          f"trying again in {delay:g} s", file=sys.stderr)
                    time.sleep(delay)
        return call


def retrying(client) -> Retrying:
    """`client` with its calls retried (once wrapped, not twice)."""
    return client if isinstance(client, Retrying) else Retrying(client)
