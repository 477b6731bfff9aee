"""Use cases for workspaces, environments and API keys."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr

from vmx.access.keys import issue_key
from vmx.access.policy import ROLE_ACTIONS, Action, Principal, authorize, require_platform_admin
from vmx.clock import Clock
from vmx.connections.ports import ConnectionRepository, StaleVersion
from vmx.errors import Conflict, ErrorDetail, InvalidInput, NotFound
from vmx.events.models import ConnectionDeleted
from vmx.events.ports import EventPublisher
from vmx.pagination import Page, decode_token, encode_token, invalid_token
from vmx.tenancy.models import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyPatch,
    Environment,
    EnvironmentCreate,
    Role,
    Workspace,
    WorkspaceCreate,
)
from vmx.tenancy.ports import TenancyRepository, revoked_key

# A forced delete races connection creates; it sweeps again this many times before giving up.
_FORCED_DELETE_SWEEPS = 5


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: SecretStr


class TenancyService:
    def __init__(
        self, tenancy: TenancyRepository, connections: ConnectionRepository, clock: Clock, events: EventPublisher
    ):
        """`events` hears of each connection a forced delete removes, as a connection's own delete publishes it."""
        self._tenancy = tenancy
        self._connections = connections
        self._clock = clock
        self._events = events

    # Workspaces

    def create_workspace(self, principal: Principal, request: WorkspaceCreate) -> Workspace:
        require_platform_admin(principal, "create workspaces")
        return self.add_workspace(request, created_by=principal.key_id)

    def add_workspace(self, request: WorkspaceCreate, created_by: str) -> Workspace:
        workspace = Workspace(
            workspace_id=str(uuid.uuid4()),
            name=request.name,
            description=request.description,
            created_at=self._clock(),
            created_by=created_by,
        )
        self._tenancy.add_workspace(workspace)
        return workspace

    def list_workspaces(self, principal: Principal, limit: int, next_token: str | None) -> Page[Workspace]:
        if principal.platform_admin:
            return self._tenancy.list_workspaces(limit, next_token)
        authorize(principal, Action.READ, principal.workspace_id)
        own = self._tenancy.get_workspace(principal.workspace_id)
        return Page([own] if own else [], None)

    def get_workspace(self, principal: Principal, workspace_id: str) -> Workspace:
        authorize(principal, Action.READ, workspace_id)
        return self._workspace(workspace_id)

    def delete_workspace(self, principal: Principal, workspace_id: str, force: bool) -> None:
        authorize(principal, Action.ADMINISTER, workspace_id)
        self._workspace(workspace_id)
        from_outside = principal.platform_admin and principal.workspace_id != workspace_id
        if not from_outside and self._holds_platform_admin_keys(workspace_id):
            # its keys go with it: this would lock the platform admins out, perhaps for good
            raise Conflict(
                f"workspace {workspace_id} holds platform-admin API keys, which would be deleted with it; "
                "only a platform-admin key from another workspace can delete it",
                code="holds_platform_admin_keys",
            )
        for _ in range(_FORCED_DELETE_SWEEPS):
            if force:
                for environment in self._tenancy.list_environments(workspace_id):
                    self._delete_connections(principal, workspace_id, environment.environment_id)
            try:
                self._tenancy.delete_workspace_if_empty(workspace_id)
            except Conflict:
                if force:
                    continue
                raise
            self._tenancy.purge_workspace(workspace_id)
            return
        raise Conflict(f"workspace {workspace_id} kept gaining connections during a forced delete; try again")

    # Environments

    def create_environment(self, principal: Principal, workspace_id: str, request: EnvironmentCreate) -> Environment:
        authorize(principal, Action.ADMINISTER, workspace_id)
        return self.add_environment(workspace_id, request, created_by=principal.key_id)

    def add_environment(self, workspace_id: str, request: EnvironmentCreate, created_by: str) -> Environment:
        environment = Environment(
            workspace_id=workspace_id,
            environment_id=str(uuid.uuid4()),
            name=request.name,
            description=request.description,
            created_at=self._clock(),
            created_by=created_by,
        )
        self._tenancy.add_environment(environment)
        return environment

    def list_environments(
        self, principal: Principal, workspace_id: str, limit: int, next_token: str | None
    ) -> Page[Environment]:
        """Newest first. A workspace holds few environments: they are read at once and paged here."""
        authorize(principal, Action.READ, workspace_id)
        self._workspace(workspace_id)
        environments = self._tenancy.list_environments(workspace_id)
        if principal.environment_ids is not None and not principal.platform_admin:
            environments = [env for env in environments if env.environment_id in principal.environment_ids]
        ordered = sorted(environments, key=_list_position, reverse=True)
        if next_token:
            after = _position_of_token(next_token, workspace_id)
            ordered = [environment for environment in ordered if _list_position(environment) < after]
        page = ordered[:limit]
        more = len(ordered) > limit
        return Page(page, _environments_token(workspace_id, page[-1]) if more else None)

    def get_environment(self, principal: Principal, workspace_id: str, environment_id: str) -> Environment:
        authorize(principal, Action.READ, workspace_id, environment_id)
        return self._environment(workspace_id, environment_id)

    def delete_environment(self, principal: Principal, workspace_id: str, environment_id: str, force: bool) -> None:
        authorize(principal, Action.ADMINISTER, workspace_id, environment_id)
        self._environment(workspace_id, environment_id)
        for _ in range(_FORCED_DELETE_SWEEPS):
            if force:
                self._delete_connections(principal, workspace_id, environment_id)
            try:
                self._tenancy.delete_environment_if_empty(workspace_id, environment_id)
            except Conflict:
                if force:
                    continue
                raise
            return
        raise Conflict(f"environment {environment_id} kept gaining connections during a forced delete; try again")

    # API keys

    def create_api_key(self, principal: Principal, workspace_id: str, request: ApiKeyCreate) -> IssuedKey:
        authorize(principal, Action.ADMINISTER, workspace_id)
        if request.platform_admin:
            require_platform_admin(principal, "create platform-admin keys")
            if request.role is not Role.ADMIN:
                message = "a platform-admin key must have role 'admin'"
                raise InvalidInput(message, [ErrorDetail(field="role", message=message)])
            if request.environment_ids is not None:
                message = "a platform-admin key acts in every workspace; it cannot be limited to environments"
                raise InvalidInput(message, [ErrorDetail(field="environmentIds", message=message)])
        _check_class_for(request.role, request.priority_class)
        self._workspace(workspace_id)
        environment_ids = None
        if request.environment_ids is not None:
            environment_ids = [str(environment_id) for environment_id in request.environment_ids]
            for environment_id in environment_ids:
                self._environment(workspace_id, environment_id)
        return self.issue_api_key(
            workspace_id,
            name=request.name,
            role=request.role,
            environment_ids=environment_ids,
            platform_admin=request.platform_admin,
            created_by=principal.key_id,
            priority_class=request.priority_class,
        )

    def issue_api_key(
        self,
        workspace_id: str,
        name: str,
        role: Role,
        environment_ids: list[str] | None,
        platform_admin: bool,
        created_by: str,
        priority_class: str | None = None,
    ) -> IssuedKey:
        new_key = issue_key()
        key = ApiKey(
            key_id=new_key.key_id,
            workspace_id=workspace_id,
            name=name,
            role=role,
            environment_ids=environment_ids,
            platform_admin=platform_admin,
            secret_hash=new_key.secret_hash,
            created_at=self._clock(),
            created_by=created_by,
            priority_class=priority_class,
        )
        self._tenancy.add_api_key(key)
        return IssuedKey(key=key, token=new_key.token)

    def list_api_keys(
        self, principal: Principal, workspace_id: str, limit: int, next_token: str | None
    ) -> Page[ApiKey]:
        authorize(principal, Action.ADMINISTER, workspace_id)
        self._workspace(workspace_id)
        return self._tenancy.list_api_keys(workspace_id, limit, next_token)

    def get_api_key(self, principal: Principal, workspace_id: str, key_id: str) -> ApiKey:
        authorize(principal, Action.ADMINISTER, workspace_id)
        return self._api_key(workspace_id, key_id)

    def change_api_key(self, principal: Principal, workspace_id: str, key_id: str, patch: ApiKeyPatch) -> ApiKey:
        """Changes a key's priority class, which its completions count in from its next request the authorizer
        does not answer from its cache."""
        authorize(principal, Action.ADMINISTER, workspace_id)
        key = self._api_key(workspace_id, key_id)
        if key.platform_admin:
            require_platform_admin(principal, "change platform-admin keys")
        if key.revoked_at is not None:
            raise revoked_key(key_id)
        if "priority_class" not in patch.model_fields_set or patch.priority_class == key.priority_class:
            return key
        _check_class_for(key.role, patch.priority_class)
        self._tenancy.set_api_key_class(key_id, patch.priority_class)
        return key.model_copy(update={"priority_class": patch.priority_class})

    def revoke_api_key(self, principal: Principal, workspace_id: str, key_id: str) -> ApiKey:
        authorize(principal, Action.ADMINISTER, workspace_id)
        key = self._api_key(workspace_id, key_id)
        if key.platform_admin:
            require_platform_admin(principal, "revoke platform-admin keys")
        if key.revoked_at is None:
            key = key.model_copy(update={"revoked_at": self._clock()})
            self._tenancy.save_api_key(key)
        return key

    def _holds_platform_admin_keys(self, workspace_id: str) -> bool:
        next_token = None
        while True:
            page = self._tenancy.list_api_keys(workspace_id, 100, next_token)
            if any(key.platform_admin and key.revoked_at is None for key in page.items):
                return True
            if page.next_token is None:
                return False
            next_token = page.next_token

    def _delete_connections(self, principal: Principal, workspace_id: str, environment_id: str) -> None:
        for connection in self._connections.list_all(workspace_id, environment_id):
            try:
                self._connections.remove(connection)
            except StaleVersion:
                # one that changed meanwhile is left to the caller's next sweep
                continue
            # so that what it leaves behind (counters, usage, discovered limits) is removed too
            self._events.publish([ConnectionDeleted.of(connection, principal.key_id, self._clock())])

    def _workspace(self, workspace_id: str) -> Workspace:
        workspace = self._tenancy.get_workspace(workspace_id)
        if workspace is None:
            raise NotFound(f"workspace {workspace_id} not found")
        return workspace

    def _environment(self, workspace_id: str, environment_id: str) -> Environment:
        self._workspace(workspace_id)
        environment = self._tenancy.get_environment(workspace_id, environment_id)
        if environment is None:
            raise NotFound(f"environment {environment_id} not found in workspace {workspace_id}")
        return environment

    def _api_key(self, workspace_id: str, key_id: str) -> ApiKey:
        self._workspace(workspace_id)
        key = self._tenancy.get_api_key(key_id)
        if key is None or key.workspace_id != workspace_id:
            raise NotFound(f"API key {key_id} not found in workspace {workspace_id}")
        return key


def _list_position(environment: Environment) -> tuple[datetime, str]:
    return environment.created_at, environment.environment_id


def _environments_token(workspace_id: str, last: Environment) -> str:
    created_at, environment_id = _list_position(last)
    return encode_token(
        {
            "workspaceId": {"S": workspace_id},
            "createdAt": {"S": created_at.isoformat()},
            "environmentId": {"S": environment_id},
        }
    )


def _position_of_token(token: str, workspace_id: str) -> tuple[datetime, str]:
    key = decode_token(token, frozenset({"workspaceId", "createdAt", "environmentId"}), ("workspaceId", workspace_id))
    try:
        created_at = datetime.fromisoformat(key["createdAt"]["S"])
    except ValueError:
        raise invalid_token() from None
    if created_at.tzinfo is None:
        raise invalid_token()
    return created_at, key["environmentId"]["S"]


def _check_class_for(role: Role, priority_class: str | None) -> None:
    if priority_class is not None and Action.USE_CONNECTIONS not in ROLE_ACTIONS[role]:
        message = f"a key with role '{role}' makes no completions, so it cannot have a priority class"
        raise InvalidInput(message, [ErrorDetail(field="priorityClass", message=message)])
