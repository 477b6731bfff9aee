"""Contract tests: Schemathesis generates requests from the API's OpenAPI document (docs/openapi.json) and sends
them through the local stack's API Gateway emulation to the real handlers on moto, with a key of the workspace
they address. Every answer must be no 5xx, a status the document declares for the operation, and a body and
headers that match what it declares (issue 12, item 2)."""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from infra.openapi import DOCUMENT_PATH
from local_stack.gateway import ApiGateway
from tests.functional.api import wsgi_app
from tests.functional.conftest import Tenant

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
# a request the document says is invalid must be refused, with a 4xx
NEGATIVE_CHECKS = [*CHECKS, checks.negative_data_rejection]
# Per operation and mode; the document has 23 operations, so each mode runs more than 500 cases.
CASES_PER_OPERATION = 25
# What would end the tenant's own workspace or environment for the cases after it: sent to other IDs.
_ENDS_THE_TENANT = {
    ("DELETE", "/api/v1/workspaces/{workspaceId}"),
    ("DELETE", "/api/v1/workspaces/{workspaceId}/environments/{environmentId}"),
}


@pytest.fixture(scope="module")
def document(gateway: ApiGateway) -> Any:
    return schemathesis.openapi.from_path(str(DOCUMENT_PATH))


def _addressed_to(case: Any, tenant: Tenant) -> None:
    """The tenant's own workspace and environment, so cases reach past the lookup of their scope."""
    if (case.method.upper(), case.path) in _ENDS_THE_TENANT or not case.path_parameters:
        return
    if "workspaceId" in case.path_parameters:
        case.path_parameters["workspaceId"] = tenant.workspace_id
    if "environmentId" in case.path_parameters:
        case.path_parameters["environmentId"] = tenant.environment_id


def _takes_input(operation: Any) -> bool:
    return bool(operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody"))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_its_document_says(
    document: Any, gateway: ApiGateway, tenant: Tenant, mode: GenerationMode
) -> None:
    app = wsgi_app(gateway)
    mode_checks = NEGATIVE_CHECKS if mode is GenerationMode.NEGATIVE else CHECKS
    sent: list[str] = []
    operations = [result.ok() for result in document.get_all_operations()]
    if mode is GenerationMode.NEGATIVE:
        # an operation that takes nothing has nothing to get wrong
        operations = [operation for operation in operations if _takes_input(operation)]
    for operation in operations:

        @settings(
            max_examples=CASES_PER_OPERATION,
            database=None,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode), own_scope=st.booleans())
        def holds(case: Any, own_scope: bool) -> None:
            # a part made wrong on purpose is sent as it is: the key or the scope would hide what is wrong
            if own_scope and not case.meta.is_negative_at(ParameterLocation.PATH):
                _addressed_to(case, tenant)
            if (
                case.headers
                and "Authorization" in case.headers
                and not case.meta.is_negative_at(ParameterLocation.HEADER)
            ):
                case.headers["Authorization"] = f"Bearer {tenant.admin_key}"
            sent.append(case.operation.label)
            case.call_and_validate(app=app, checks=mode_checks)

        holds()
    assert len(sent) >= 500, f"{len(sent)} cases"
    assert set(sent) == {operation.label for operation in operations}
