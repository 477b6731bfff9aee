from typing import Protocol

from vmx.connections.models import Connection
from vmx.pagination import Page


class ConnectionRepository(Protocol):
    """Discovered capacity is stored apart from the connection and written only by the consumer of the
    providers' observations: `add` and `replace` never write it, so a connection write cannot lose an
    observation made since the connection was read."""

    def add(self, connection: Connection) -> None:
        """Stores a new connection. Raises Conflict when its name is taken in the environment and
        NotFound when the workspace or environment is gone."""
        ...

    def get(self, workspace_id: str, environment_id: str, connection_id: str) -> Connection | None:
        """With its discovered capacity."""
        ...

    def list_page(
        self, workspace_id: str, environment_id: str, limit: int, next_token: str | None, provider: str | None
    ) -> Page[Connection]:
        """Newest first, with their discovered capacity."""
        ...

    def replace(self, previous: Connection, updated: Connection) -> None:
        """Writes `updated` only if the stored version is still `previous.version`.
        Raises StaleVersion otherwise, Conflict when a new name is taken."""
        ...

    def remove(self, connection: Connection) -> None:
        """Deletes the connection if it is still at `connection.version`; raises StaleVersion otherwise.
        Its discovered capacity goes with it."""
        ...

    def get_by_name(self, workspace_id: str, environment_id: str, name: str) -> Connection | None:
        """The connection with this name (compared as names are kept unique: NFKC, ignoring case), with its
        discovered capacity."""
        ...

    def list_all(self, workspace_id: str, environment_id: str) -> list[Connection]:
        """Without their discovered capacity, which none of its callers needs."""
        ...


class StaleVersion(Exception):
    """The stored connection changed since it was read."""
