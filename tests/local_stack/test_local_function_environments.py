"""Each function in the local stack is told exactly its own environment, as in AWS: what
infra.environments.environment_of gives it, what Lambda sets (pointed at moto), and nothing of another function's
nor of the local stack's own process environment beyond what a process needs."""

import dataclasses
import os
from pathlib import Path

import pytest

from infra import system
from infra.environments import STANDARD_ENVIRONMENT, environment_of
from infra.system import AUTHORIZER, COMPLETIONS, FUNCTIONS, TABLES, WORK_QUEUES, Function, WorkQueue
from local_stack.emulator import BASE_ENVIRONMENT, PROCESS_VARIABLES, Provisioned, function_environment
from local_stack.event_delivery import LocalQueue
from local_stack.lambda_service import LambdaService
from local_stack.state import cipher_environment

HANDLERS = Path(__file__).resolve().parent / "handlers"
ENDPOINT_URL = "http://127.0.0.1:5000"
# What the local stack was started with: what any process needs, a tunable one function reads, and what must not
# reach any function.
STARTED_WITH = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "CONNECTION_CACHE_SECONDS": "0",
    "CAPACITY_TABLE_NAME": "leaked-from-the-shell",
    "AWS_PROFILE": "production",
    "AWS_SESSION_TOKEN": "a-real-session",
    "HOME": "/home/developer",
}
# What the local Lambda service sets for one execution environment, as Lambda does.
SET_PER_INSTANCE = {
    "AWS_LAMBDA_RUNTIME_API",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    # set by vmx.runtime for the invocation that reads it
    "_X_AMZN_TRACE_ID",
    # set by Python itself where no locale is (PEP 538)
    "LC_CTYPE",
}


def local_queue(spec: WorkQueue) -> LocalQueue:
    url = f"{ENDPOINT_URL}/000000000000/vmx-local-{spec.name}"
    return LocalQueue(spec, url, f"arn:aws:sqs:us-east-1:000000000000:vmx-local-{spec.name}", url + "-dlq", None)


# As local_stack.emulator.provision returns it, without moto.
PROVISIONED = Provisioned(
    table_names={table.logical_id: f"vmx-local-{table.logical_id}" for table in TABLES},
    event_bus_name="vmx-local-events",
    credentials_key_id="local-key-id",
    queues=[local_queue(spec) for spec in WORK_QUEUES],
)
RESOURCES = PROVISIONED.resources(
    cipher_environment(bytes(32)), own_api_hosts="127.0.0.1:3000", console_origin="http://127.0.0.1:8080"
)

functions = pytest.mark.parametrize("function", FUNCTIONS, ids=lambda function: function.name)


@functions
def test_a_function_is_given_its_own_environment_pointed_at_moto(function: Function) -> None:
    environment = function_environment(function, RESOURCES, ENDPOINT_URL, STARTED_WITH)

    inherited = {name: STARTED_WITH[name] for name in PROCESS_VARIABLES if name in STARTED_WITH}
    tunable = {"CONNECTION_CACHE_SECONDS": "0"} if function is COMPLETIONS else {}
    own = environment_of(function, RESOURCES)
    assert environment == {**inherited, **tunable, **BASE_ENVIRONMENT, "AWS_ENDPOINT_URL": ENDPOINT_URL, **own}
    assert STANDARD_ENVIRONMENT.items() <= environment.items()


@functions
def test_a_functions_settings_validate_from_its_local_environment(function: Function) -> None:
    function.settings.model_validate(function_environment(function, RESOURCES, ENDPOINT_URL, STARTED_WITH))


@functions
def test_nothing_of_the_developers_shell_but_a_process_needs_reaches_a_function(function: Function) -> None:
    environment = function_environment(function, RESOURCES, ENDPOINT_URL, STARTED_WITH)

    assert "AWS_PROFILE" not in environment
    assert "HOME" not in environment
    assert environment.get("CAPACITY_TABLE_NAME") in {None, RESOURCES.table_names["CapacityTable"]}
    assert environment["AWS_ACCESS_KEY_ID"] == BASE_ENVIRONMENT["AWS_ACCESS_KEY_ID"]
    assert "AWS_SESSION_TOKEN" not in environment


def test_the_local_stack_lets_only_the_base_url_checkers_reach_loopback_providers() -> None:
    told = {
        function.name
        for function in FUNCTIONS
        if function_environment(function, RESOURCES, ENDPOINT_URL, {}).get(system.ALLOW_LOOPBACK_ENV_VAR) == "true"
    }

    assert told == system.BASE_URL_CHECKERS == {system.CONNECTIONS.name, system.COMPLETIONS.name}


def test_an_instance_of_the_authorizer_sees_its_own_environment_and_no_other_functions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the local stack's own process holding every table's name, as it once shared them with every function
    for table in TABLES:
        monkeypatch.setenv(table.env_var, PROVISIONED.table_names[table.logical_id])
    authorizer = dataclasses.replace(AUTHORIZER, source_dir="environ")  # its spec, a handler that shows its environ
    given = function_environment(authorizer, RESOURCES, ENDPOINT_URL, os.environ)

    # When an instance of the authorizer runs
    with LambdaService(
        [authorizer], environments={authorizer.name: given}, functions_root=HANDLERS, init_timeout_seconds=20
    ) as service:
        seen: dict[str, str] = service.invoke(authorizer.name, {})

    # Then it sees its own environment and what Lambda sets, and no other function's table
    assert seen.keys() - SET_PER_INSTANCE == given.keys() - SET_PER_INSTANCE
    assert {name: seen[name] for name in given.keys() - SET_PER_INSTANCE} == {
        name: value for name, value in given.items() if name not in SET_PER_INSTANCE
    }
    assert seen["TENANCY_TABLE_NAME"] == PROVISIONED.table_names["TenancyTable"]
    assert "CAPACITY_TABLE_NAME" not in seen
    assert "CONNECTIONS_TABLE_NAME" not in seen


def test_the_service_refuses_a_function_without_an_environment() -> None:
    with pytest.raises(ValueError, match="no environment for functions"):
        LambdaService([AUTHORIZER], environments={})
