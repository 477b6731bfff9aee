from typing import Protocol

from vmx.connections.models import Connection
from vmx.pagination import Page


class ConnectionRepository(Protocol):
    def add(self, connection: Connection) -> None:
        """Stores a new connection. Raises Conflict when its name is taken in the environment and
        NotFound when the workspace or environment is gone."""
        ...

    def get(self, workspace_id: str, environment_id: str, connection_id: str) -> Connection | None: ...

    def list_page(
        self, workspace_id: str, environment_id: str, limit: int, next_token: str | None, provider: str | None
    ) -> Page[Connection]:
        """Newest first."""
        ...

    def replace(self, previous: Connection, updated: Connection) -> None:
        """Writes `updated` only if the stored version is still `previous.version`.
        Raises StaleVersion otherwise, Conflict when a new name is taken."""
        ...

    def remove(self, connection: Connection) -> None:
        """Deletes the connection if it is still at `connection.version`; raises StaleVersion otherwise."""
        ...

    def get_by_name(self, workspace_id: str, environment_id: str, name: str) -> Connection | None:
        """The connection with this name (compared as names are kept unique: NFKC, ignoring case)."""
        ...

    def list_all(self, workspace_id: str, environment_id: str) -> list[Connection]: ...


class StaleVersion(Exception):
    """The stored connection changed since it was read."""
