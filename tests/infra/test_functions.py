"""Every function is our standard function, configured from its spec."""

from pathlib import Path

import pytest
from aws_cdk import App

from infra import system
from infra.layers import MissingDependenciesLayerError
from infra.stack import DEPENDENCIES_LAYER_DIR_CONTEXT, VmxAiConnectionsStack
from infra.system import FUNCTIONS, TABLES, Function
from tests.infra.synthesized import Synthesized

TABLES_BY_ID = {table.logical_id: table for table in TABLES}


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
def test_each_function_gets_its_tables_key_bus_and_powertools_settings(
    synthesized: Synthesized, spec: Function
) -> None:
    variables = synthesized.properties(synthesized.function_id(spec.name))["Environment"]["Variables"]
    key_id = synthesized.logical_id(synthesized.stack.credentials_key.key)
    bus_id = synthesized.logical_id(synthesized.stack.events.bus)

    table_variables = {TABLES_BY_ID[table_id].env_var: {"Ref": table_id} for table_id in spec.tables}
    assert variables == {
        "POWERTOOLS_SERVICE_NAME": "vmx-ai-connections",
        "POWERTOOLS_METRICS_NAMESPACE": "VmxAiConnections",
        "LOG_LEVEL": "INFO",
        "CREDENTIALS_CIPHER": "kms",
        system.CREDENTIALS_KEY_ENV_VAR: {"Fn::GetAtt": [key_id, "Arn"]},
        "EVENT_BUS_NAME": {"Ref": bus_id},
        **table_variables,
    }


def test_layers_are_for_python_3_12_on_arm64(synthesized: Synthesized) -> None:
    layers = synthesized.of_type("AWS::Lambda::LayerVersion").values()

    assert len(layers) == 2
    for layer in layers:
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_synth_without_the_dependencies_layer_says_to_run_make_layer(tmp_path: Path) -> None:
    app = App(context={DEPENDENCIES_LAYER_DIR_CONTEXT: str(tmp_path / "never-built")})

    with pytest.raises(MissingDependenciesLayerError, match="make layer"):
        VmxAiConnectionsStack(app, "Scratch")
