"""Every function is our standard function, configured from its spec."""

from pathlib import Path

import pytest
from aws_cdk import App

from infra import events, system
from infra.environments import environment_of
from infra.layers import MissingDependenciesLayerError
from infra.stack import DEPENDENCIES_LAYER_DIR_CONTEXT, VmxAiConnectionsStack
from infra.system import EVENT_BUS_ENV_VAR, FUNCTIONS, TABLES, Function
from tests.infra.synthesized import Synthesized

TABLES_BY_ID = {table.logical_id: table for table in TABLES}
# What every function gets, whatever its spec.
POWERTOOLS_SETTINGS = {
    "POWERTOOLS_SERVICE_NAME": "vmx-ai-connections",
    "POWERTOOLS_METRICS_NAMESPACE": "VmxAiConnections",
    "LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_each_function_is_our_standard_function(synthesized: Synthesized, spec: Function) -> None:
    properties = synthesized.properties(synthesized.function_id(spec.name))

    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == "handler.lambda_handler"
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["LoggingConfig"]["LogFormat"] == "JSON"
    assert properties["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    assert properties["MemorySize"] == spec.memory_mb
    assert properties["Timeout"] == spec.timeout_seconds
    assert properties["Description"] == spec.description
    assert len(properties["Layers"]) == 2


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_each_function_logs_to_its_own_group_with_a_retention(synthesized: Synthesized, spec: Function) -> None:
    function = synthesized.stack.functions[spec.name]
    log_group_id = synthesized.logical_id(function.log_group)

    logging_config = synthesized.properties(synthesized.function_id(spec.name))["LoggingConfig"]
    assert logging_config["LogGroup"] == {"Ref": log_group_id}
    assert synthesized.properties(log_group_id)["RetentionInDays"] > 0


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_each_function_gets_only_its_tables_its_key_its_bus_its_queues_and_the_powertools_settings(
    synthesized: Synthesized, spec: Function
) -> None:
    variables = synthesized.properties(synthesized.function_id(spec.name))["Environment"]["Variables"]
    key_id = synthesized.logical_id(synthesized.stack.credentials_key.key)
    bus_id = synthesized.logical_id(synthesized.stack.events.bus)

    table_variables = {TABLES_BY_ID[table_id].env_var: {"Ref": table_id} for table_id in spec.tables}
    key_variables = (
        {"CREDENTIALS_CIPHER": "kms", system.CREDENTIALS_KEY_ENV_VAR: {"Fn::GetAtt": [key_id, "Arn"]}}
        if spec.kms_actions
        else {}
    )
    bus_variables = {EVENT_BUS_ENV_VAR: {"Ref": bus_id}} if spec.publishes_events else {}
    console_domain = {"Fn::GetAtt": [synthesized.logical_id(synthesized.stack.console.distribution), "DomainName"]}
    console_variables = (
        {system.CONSOLE_ORIGIN_ENV_VAR: {"Fn::Join": ["", ["https://", console_domain]]}}
        if spec.name in {route.function for route in system.ROUTES}
        else {}
    )
    streaming_variables = (
        {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/vmx-streaming-runtime"} if spec.streams_responses else {}
    )
    api_id = synthesized.logical_id(synthesized.stack.api.rest_api)
    own_host = {
        "Fn::Join": ["", [{"Ref": api_id}, ".execute-api.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}]]
    }
    address_variables = {system.OWN_API_HOSTS_ENV_VAR: own_host} if spec.name in system.BASE_URL_CHECKERS else {}
    queue_variables = {
        queue.url_env_var: {"Ref": synthesized.logical_id(synthesized.stack.work_queues[queue.name].queue)}
        for queue in system.WORK_QUEUES
        if spec.name in queue.senders
    }
    assert variables == {
        **POWERTOOLS_SETTINGS,
        **table_variables,
        **key_variables,
        **bus_variables,
        **console_variables,
        **streaming_variables,
        **queue_variables,
        **address_variables,
    }


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_each_functions_environment_is_what_environment_of_gives_the_local_stack_too(
    synthesized: Synthesized, spec: Function
) -> None:
    variables = synthesized.properties(synthesized.function_id(spec.name))["Environment"]["Variables"]
    streaming_runtime = {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bin/vmx-streaming-runtime"} if spec.streams_responses else {}

    expected = synthesized.stack.resolve(environment_of(spec, synthesized.stack.resources))

    assert variables == {**expected, **streaming_runtime}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_no_function_records_response_bodies_in_traces(synthesized: Synthesized, spec: Function) -> None:
    variables = synthesized.properties(synthesized.function_id(spec.name))["Environment"]["Variables"]

    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


def test_only_the_functions_that_may_use_the_key_are_told_about_it(synthesized: Synthesized) -> None:
    told = {
        spec.name
        for spec in FUNCTIONS
        if system.CREDENTIALS_KEY_ENV_VAR
        in synthesized.properties(synthesized.function_id(spec.name))["Environment"]["Variables"]
    }

    assert told == {system.CONNECTIONS.name, system.COMPLETIONS.name, system.BEDROCK_QUOTAS.name}


def test_the_bus_construct_names_the_bus_in_the_spec_variable() -> None:
    assert events.EVENT_BUS_ENV_VAR == EVENT_BUS_ENV_VAR


def test_layers_are_for_python_3_12_on_arm64(synthesized: Synthesized) -> None:
    for layer in synthesized.stack.layers.all:
        properties = synthesized.properties(synthesized.logical_id(layer))
        assert properties["CompatibleRuntimes"] == ["python3.12"]
        assert properties["CompatibleArchitectures"] == ["arm64"]


def test_synth_without_the_dependencies_layer_says_to_run_make_layer(tmp_path: Path) -> None:
    app = App(context={DEPENDENCIES_LAYER_DIR_CONTEXT: str(tmp_path / "never-built")})

    with pytest.raises(MissingDependenciesLayerError, match="make layer"):
        VmxAiConnectionsStack(app, "Scratch")
