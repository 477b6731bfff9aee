"""Connections looked up by name, kept in this warm instance's memory for a few seconds.

The completion path reads a connection (its name claim, the connection and its discovered capacity: three
calls) on every request; kept for `ttl_seconds`, a warm instance's request makes none of them, and a change to
the connection (an edit, a capacity disabled, a delete) is seen by every instance within that time. Connections
that do not exist are not kept, so one created a moment ago is found at once.
"""

import threading
import time
from collections.abc import Callable

from vmx.connections.models import Connection
from vmx.fields import name_key
from vmx.use_cases.completions import ConnectionLookup


class RecentConnections:
    def __init__(
        self, connections: ConnectionLookup, ttl_seconds: float, monotonic: Callable[[], float] = time.monotonic
    ):
        self._connections = connections
        self._ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._kept: dict[tuple[str, str, str], tuple[float, Connection]] = {}
        self._lock = threading.Lock()

    def get_by_name(self, workspace_id: str, environment_id: str, name: str) -> Connection | None:
        key = (workspace_id, environment_id, name_key(name))
        now = self._monotonic()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and now - kept[0] < self._ttl_seconds:
            return kept[1]
        connection = self._connections.get_by_name(workspace_id, environment_id, name)
        with self._lock:
            if connection is None:
                self._kept.pop(key, None)
            else:
                self._kept[key] = (now, connection)
        return connection

    def list_all(self, workspace_id: str, environment_id: str) -> list[Connection]:
        return self._connections.list_all(workspace_id, environment_id)
