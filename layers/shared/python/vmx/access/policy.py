"""Who may do what: roles, the principal behind a request, and the checks that refuse with a reason."""

from dataclasses import dataclass
from enum import StrEnum

from vmx.errors import Forbidden
from vmx.tenancy.models import Role


class Action(StrEnum):
    READ = "read"
    MANAGE_CONNECTIONS = "manage connections"
    ADMINISTER = "administer the workspace"
    USE_CONNECTIONS = "send completions"


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.EDITOR: frozenset({Action.READ, Action.MANAGE_CONNECTIONS, Action.USE_CONNECTIONS}),
    Role.VIEWER: frozenset({Action.READ}),
    Role.GATEWAY: frozenset({Action.USE_CONNECTIONS}),
}


@dataclass(frozen=True)
class Principal:
    key_id: str
    workspace_id: str
    role: Role
    environment_ids: frozenset[str] | None
    platform_admin: bool
    # the class its completions count in where the connection has it (vmx.capacity.limits.Prioritization)
    priority_class: str | None = None

    def can_reach_workspace(self, workspace_id: str) -> bool:
        return self.platform_admin or workspace_id == self.workspace_id


def authorize(principal: Principal, action: Action, workspace_id: str, environment_id: str | None = None) -> None:
    """Raises Forbidden naming what the key lacks. Platform admins may do anything anywhere."""
    if principal.platform_admin:
        return
    if workspace_id != principal.workspace_id:
        raise Forbidden(
            f"API key {principal.key_id} belongs to workspace {principal.workspace_id}; "
            f"it cannot access workspace {workspace_id}"
        )
    if action not in ROLE_ACTIONS[principal.role]:
        raise Forbidden(f"API key {principal.key_id} has role '{principal.role}', which cannot {action}")
    if principal.environment_ids is None:
        return
    if environment_id is None:
        if action is not Action.READ:
            raise Forbidden(
                f"API key {principal.key_id} is limited to some environments; it cannot {action} workspace-wide"
            )
    elif environment_id not in principal.environment_ids:
        raise Forbidden(
            f"API key {principal.key_id} is limited to environments {', '.join(sorted(principal.environment_ids))}; "
            f"it cannot access environment {environment_id}"
        )


def require_platform_admin(principal: Principal, what: str) -> None:
    if not principal.platform_admin:
        raise Forbidden(f"only a platform-admin API key can {what}; key {principal.key_id} is not one")
