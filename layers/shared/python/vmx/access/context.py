"""The authorizer's verdict as API Gateway hands it to the handlers: a flat map of strings."""

from collections.abc import Mapping
from typing import Any

from vmx.access.policy import Principal
from vmx.errors import Unauthenticated
from vmx.tenancy.models import ApiKey, Role


def authorizer_context(key: ApiKey) -> dict[str, str]:
    return {
        "keyId": key.key_id,
        "workspaceId": key.workspace_id,
        "role": key.role.value,
        "environmentIds": "" if key.environment_ids is None else ",".join(key.environment_ids),
        "limitedToEnvironments": "true" if key.environment_ids is not None else "false",
        "platformAdmin": "true" if key.platform_admin else "false",
        "priorityClass": key.priority_class or "",
    }


def principal_from_context(context: Mapping[str, Any] | None) -> Principal:
    if not context or "keyId" not in context:
        # behind API Gateway this cannot happen: the authorizer runs first
        raise Unauthenticated("Unauthorized")
    limited = str(context.get("limitedToEnvironments")) == "true"
    return Principal(
        key_id=str(context["keyId"]),
        workspace_id=str(context["workspaceId"]),
        role=Role(str(context["role"])),
        environment_ids=frozenset(filter(None, str(context["environmentIds"]).split(","))) if limited else None,
        platform_admin=str(context.get("platformAdmin")) == "true",
        priority_class=str(context.get("priorityClass") or "") or None,
    )
