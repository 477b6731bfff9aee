"""A DynamoDB transaction whose cancellation says, by label, which items failed their condition.

pynamodb sends a transaction's items grouped by kind (condition checks, deletes, puts, updates), not in
call order, so this remembers each item's label in the order they are actually sent.
"""

import random
import time
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from vmx.storage.errors import unavailable

_SEND_ORDER = ("condition_check", "delete", "save", "update")
# Another transaction touched one of our items at the same moment: DynamoDB asks us to retry. Exponential
# backoff with full jitter spreads racing writers out (about 6 s in all at worst).
_CONFLICT_ATTEMPTS = 8
_CONFLICT_BACKOFF_SECONDS = 0.025


class Transaction:
    def __init__(self, connection: Connection):
        self._write = TransactWrite(connection=connection)
        self._labels: dict[str, list[str]] = {kind: [] for kind in _SEND_ORDER}

    def condition_check(self, label: str, model_class: Any, hash_key: str, range_key: str, condition: Any) -> None:
        self._write.condition_check(model_class, hash_key, range_key, condition=condition)
        self._labels["condition_check"].append(label)

    def delete(self, label: str, item: Any, condition: Any = None) -> None:
        self._write.delete(item, condition=condition)
        self._labels["delete"].append(label)

    def save(self, label: str, item: Any, condition: Any = None) -> None:
        self._write.save(item, condition=condition)
        self._labels["save"].append(label)

    def update(self, label: str, item: Any, actions: list[Any], condition: Any = None) -> None:
        self._write.update(item, actions=actions, condition=condition)
        self._labels["update"].append(label)

    def commit(self) -> frozenset[str]:
        """Writes everything or nothing; returns the labels of the items whose condition failed."""
        sent = [label for kind in _SEND_ORDER for label in self._labels[kind]]
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._write:
                    pass
            except TransactWriteError as exc:
                codes = [getattr(reason, "code", None) for reason in exc.cancellation_reasons]
                failed = frozenset(
                    label for label, code in zip(sent, codes, strict=False) if code == "ConditionalCheckFailed"
                )
                if failed:
                    return failed
                if "TransactionConflict" in codes and attempt < _CONFLICT_ATTEMPTS:
                    time.sleep(random.uniform(0, _CONFLICT_BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - jitter, not crypto
                    continue
                raise unavailable(exc) from exc
            return frozenset()
