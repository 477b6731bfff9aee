"""What each function is told (infra.environments.environment_of, in AWS and locally alike) is exactly what its
settings class (Function.settings, in infra/system.py) reads: every variable it needs, and nothing of any other
function's. The spec's tables also decide the function's IAM grants, so a table dropped from a spec fails here
rather than in AWS."""

import dataclasses

import pytest

from infra.environments import LAMBDA_SETS, STANDARD_ENVIRONMENT, Resources, environment_of, settings_read
from infra.system import (
    AUTHORIZER,
    CONSOLE_ORIGIN_ENV_VAR,
    CREDENTIALS_KEY_ENV_VAR,
    FUNCTIONS,
    TABLES,
    WORK_QUEUES,
    Function,
)
from local_stack.state import cipher_environment

# As the stack names them (tokens there), and as the local stack does.
IN_AWS = Resources(
    table_names={table.logical_id: f"vmx-{table.logical_id}-1A2B3C" for table in TABLES},
    event_bus_name="VmxAiConnections-events",
    queue_urls={queue.name: f"https://sqs.us-east-1.amazonaws.com/123456789012/{queue.name}" for queue in WORK_QUEUES},
    cipher={"CREDENTIALS_CIPHER": "kms", CREDENTIALS_KEY_ENV_VAR: "arn:aws:kms:us-east-1:123456789012:key/k"},
    own_api_hosts="a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
    console_origin="https://d111111abcdef8.cloudfront.net",
)
LOCALLY = Resources(
    table_names={table.logical_id: f"vmx-local-{table.logical_id}" for table in TABLES},
    event_bus_name="vmx-local-events",
    queue_urls={queue.name: f"http://127.0.0.1:5000/000000000000/vmx-local-{queue.name}" for queue in WORK_QUEUES},
    cipher={**cipher_environment(bytes(32)), CREDENTIALS_KEY_ENV_VAR: "local-key-id"},
    own_api_hosts="127.0.0.1:3000,::1:3000,localhost:3000",
    console_origin=None,
    allow_loopback_base_urls=True,
)
DEPLOYMENTS = {"in-aws": IN_AWS, "locally": LOCALLY}
# What Lambda (or the local stack in its place) sets in every function besides its environment.
SET_BY_LAMBDA = dict.fromkeys(LAMBDA_SETS, "us-east-1")

deployments = pytest.mark.parametrize("resources", DEPLOYMENTS.values(), ids=DEPLOYMENTS.keys())
functions = pytest.mark.parametrize("function", FUNCTIONS, ids=lambda function: function.name)


def variables_read(function: Function) -> set[str]:
    return {name for setting in settings_read(function.settings) for name in setting.names}


def unmet_settings(function: Function, resources: Resources) -> list[tuple[str, ...]]:
    """The required settings of `function` that neither its environment nor Lambda gives it."""
    given = environment_of(function, resources).keys() | SET_BY_LAMBDA.keys()
    return [
        setting.names
        for setting in settings_read(function.settings)
        if setting.required and not given & set(setting.names)
    ]


@deployments
@functions
def test_every_setting_a_function_needs_is_given_to_it(function: Function, resources: Resources) -> None:
    assert unmet_settings(function, resources) == []


@deployments
@functions
def test_a_functions_settings_validate_from_its_environment_alone(function: Function, resources: Resources) -> None:
    function.settings.model_validate({**SET_BY_LAMBDA, **environment_of(function, resources)})


@deployments
@functions
def test_a_function_is_told_nothing_it_does_not_read(function: Function, resources: Resources) -> None:
    told = environment_of(function, resources).keys() - STANDARD_ENVIRONMENT.keys()

    assert told - variables_read(function) == set()


@deployments
@functions
def test_a_function_is_told_whatever_it_reads_that_the_deployment_tells_any_function(
    function: Function, resources: Resources
) -> None:
    told_to_some = {name for other in FUNCTIONS for name in environment_of(other, resources)}

    assert variables_read(function) & told_to_some <= environment_of(function, resources).keys()


@functions
def test_the_standard_settings_reach_every_function_unchanged(function: Function) -> None:
    assert STANDARD_ENVIRONMENT.items() <= environment_of(function, IN_AWS).items()


def test_the_authorizer_is_told_its_table_and_no_other() -> None:
    environment = environment_of(AUTHORIZER, IN_AWS)

    assert environment["TENANCY_TABLE_NAME"] == IN_AWS.table_names["TenancyTable"]
    assert not {"CAPACITY_TABLE_NAME", "CONNECTIONS_TABLE_NAME", "USAGE_TABLE_NAME"} & environment.keys()
    assert CONSOLE_ORIGIN_ENV_VAR not in environment  # it serves no route


@pytest.mark.parametrize(
    ("function", "table_id"),
    [(function, table_id) for function in FUNCTIONS for table_id in function.tables],
    ids=lambda value: value.name if isinstance(value, Function) else value,
)
def test_a_table_dropped_from_a_functions_spec_leaves_a_setting_unmet(function: Function, table_id: str) -> None:
    """The mistake that used to pass every tier: the IAM grant goes, and now the variable with it, which the
    check above catches (and which the function's settings refuse in the local stack, as in AWS)."""
    without = dataclasses.replace(
        function, tables={key: value for key, value in function.tables.items() if key != table_id}
    )

    assert unmet_settings(without, IN_AWS) != []
    assert unmet_settings(without, LOCALLY) != []
