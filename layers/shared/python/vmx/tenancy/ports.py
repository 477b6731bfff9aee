from typing import Protocol

from vmx.errors import Conflict
from vmx.pagination import Page
from vmx.tenancy.models import ApiKey, Environment, Workspace


class TenancyRepository(Protocol):
    def add_workspace(self, workspace: Workspace) -> None: ...

    def get_workspace(self, workspace_id: str) -> Workspace | None: ...

    def list_workspaces(self, limit: int, next_token: str | None) -> Page[Workspace]: ...

    def delete_workspace_if_empty(self, workspace_id: str) -> None:
        """Raises NotFound, or Conflict while the workspace still holds connections."""
        ...

    def add_environment(self, environment: Environment) -> None:
        """Raises NotFound when the workspace is gone, Conflict when the name is taken."""
        ...

    def get_environment(self, workspace_id: str, environment_id: str) -> Environment | None: ...

    def list_environments(self, workspace_id: str) -> list[Environment]: ...

    def delete_environment_if_empty(self, workspace_id: str, environment_id: str) -> None:
        """Raises NotFound, or Conflict while the environment still holds connections."""
        ...

    def connection_count(self, workspace_id: str, environment_id: str | None = None) -> int: ...

    def add_api_key(self, key: ApiKey) -> None: ...

    def get_api_key(self, key_id: str) -> ApiKey | None: ...

    def list_api_keys(self, workspace_id: str, limit: int, next_token: str | None) -> Page[ApiKey]: ...

    def save_api_key(self, key: ApiKey) -> None: ...

    def set_api_key_class(self, key_id: str, priority_class: str | None) -> None:
        """Changes only the key's priority class, if the key exists and is not revoked; raises NotFound or
        revoked_key's Conflict otherwise, so that no change can bring a revoked key back."""
        ...

    def purge_workspace(self, workspace_id: str) -> None:
        """Removes what is left of a deleted workspace: its environments and API keys."""
        ...


def revoked_key(key_id: str) -> Conflict:
    return Conflict(f"API key {key_id} is revoked; its priority class can no longer change", code="key_revoked")
