"""The event outbox in the template: the queue every publishing function keeps what the bus will not take in,
its consumer, its dead-letter queue and redrive, and the alarm on events lost all the same."""

import re
from typing import Any

import pytest
from pydantic import BaseModel

from app import STACK_NAME
from infra.stack import PROJECT_ROOT
from infra.standard_function import METRICS_NAMESPACE, SERVICE_NAME
from infra.system import BEDROCK_QUOTAS, COMPLETIONS, CONNECTIONS, EVENT_OUTBOX, FUNCTIONS, TENANCY, WORK_QUEUES
from tests.infra.synthesized import Synthesized
from vmx.settings import BedrockQuotasSettings, CompletionsSettings, ConnectionsSettings, TenancySettings

(OUTBOX,) = [queue for queue in WORK_QUEUES if queue.name == "event-outbox"]
# The settings each publishing function reads; each needs the outbox's URL.
PUBLISHERS: dict[str, type[BaseModel]] = {
    TENANCY.name: TenancySettings,
    CONNECTIONS.name: ConnectionsSettings,
    COMPLETIONS.name: CompletionsSettings,
    BEDROCK_QUOTAS.name: BedrockQuotasSettings,
}


def outbox_ids(synthesized: Synthesized) -> tuple[str, str]:
    delivery = synthesized.stack.work_queues[OUTBOX.name]
    return synthesized.logical_id(delivery.queue), synthesized.logical_id(delivery.dead_letter_queue)


def variables(synthesized: Synthesized, function_name: str) -> dict[str, Any]:
    env: dict[str, Any] = synthesized.properties(synthesized.function_id(function_name))["Environment"]["Variables"]
    return env


def test_every_function_that_publishes_but_the_outbox_consumer_sends_to_the_outbox() -> None:
    publishing = {function.name for function in FUNCTIONS if function.publishes_events}

    assert set(OUTBOX.senders) == publishing - {EVENT_OUTBOX.name} == set(PUBLISHERS)
    assert OUTBOX.consumer == EVENT_OUTBOX.name


@pytest.mark.parametrize("name", sorted(PUBLISHERS))
def test_a_publisher_may_only_send_to_the_outbox_and_is_told_its_url(synthesized: Synthesized, name: str) -> None:
    queue_id, dead_letter_id = outbox_ids(synthesized)
    on_the_outbox = {action for action, resource in synthesized.grants(name) if resource in (queue_id, dead_letter_id)}

    assert on_the_outbox == {"sqs:SendMessage"}
    assert ("sqs:SendMessage", queue_id) in synthesized.grants(name)
    assert variables(synthesized, name)[OUTBOX.url_env_var] == {"Ref": queue_id}


@pytest.mark.parametrize("name", sorted(PUBLISHERS))
def test_a_publishers_settings_require_the_outbox_url(name: str) -> None:
    field = PUBLISHERS[name].model_fields["event_outbox_queue_url"]

    assert (field.validation_alias, field.is_required()) == (OUTBOX.url_env_var, True)


def test_the_outbox_consumer_may_put_events_on_the_bus_and_read_its_queue_only(synthesized: Synthesized) -> None:
    queue_id, _ = outbox_ids(synthesized)
    bus_id = synthesized.logical_id(synthesized.stack.events.bus)
    grants = synthesized.grants(EVENT_OUTBOX.name)

    assert {resource for action, resource in grants if action.startswith(("events:", "sqs:"))} == {bus_id, queue_id}
    assert {action for action, resource in grants if resource == bus_id} == {"events:PutEvents"}
    assert "sqs:SendMessage" not in {action for action, _ in grants}
    assert not any(action.startswith(("dynamodb:", "kms:")) for action, _ in grants)
    assert variables(synthesized, EVENT_OUTBOX.name)["EVENT_BUS_NAME"] == {"Ref": bus_id}
    assert OUTBOX.url_env_var not in variables(synthesized, EVENT_OUTBOX.name)


def test_the_outbox_is_retried_for_half_an_hour_then_dead_lettered(synthesized: Synthesized) -> None:
    queue_id, dead_letter_id = outbox_ids(synthesized)
    queue = synthesized.properties(queue_id)

    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letter_id, "Arn"]},
        "maxReceiveCount": 10,
    }
    assert queue["VisibilityTimeout"] == 6 * EVENT_OUTBOX.timeout_seconds == 180
    assert synthesized.properties(synthesized.function_id(EVENT_OUTBOX.name))["Timeout"] == 30
    (mapping,) = [
        mapping["Properties"]
        for mapping in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert mapping["FunctionName"] == {"Ref": synthesized.function_id(EVENT_OUTBOX.name)}
    assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (10, ["ReportBatchItemFailures"])


def test_a_message_in_the_outbox_dead_letter_queue_raises_an_alarm(synthesized: Synthesized) -> None:
    _, dead_letter_id = outbox_ids(synthesized)
    alarm = synthesized.properties(synthesized.logical_id(synthesized.stack.work_queues[OUTBOX.name].alarm))

    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letter_id, "QueueName"]}}]
    assert alarm["AlarmActions"] == [{"Ref": synthesized.logical_id(synthesized.stack.alarms.topic)}]


def test_events_not_published_raise_an_alarm_on_the_alarm_topic(synthesized: Synthesized) -> None:
    alarm_id = synthesized.logical_id(synthesized.stack.alarms.events_not_published)
    alarm = synthesized.properties(alarm_id)

    assert {key: value for key, value in alarm.items() if key != "AlarmDescription"} == {
        "Namespace": "VmxAiConnections",
        "MetricName": "EventsNotPublished",
        "Dimensions": [{"Name": "service", "Value": "vmx-ai-connections"}],
        "Statistic": "Sum",
        "Period": 300,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0,
        "EvaluationPeriods": 1,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [{"Ref": synthesized.logical_id(synthesized.stack.alarms.topic)}],
    }


@pytest.mark.parametrize("name", sorted(PUBLISHERS))
def test_the_alarm_watches_the_metric_each_publisher_writes(synthesized: Synthesized, name: str) -> None:
    # Powertools writes to the namespace it is given, with the service as the metric's one dimension
    env = variables(synthesized, name)

    assert (env["POWERTOOLS_METRICS_NAMESPACE"], env["POWERTOOLS_SERVICE_NAME"]) == (METRICS_NAMESPACE, SERVICE_NAME)


def test_the_outputs_name_the_outbox_and_its_dead_letter_queue(synthesized: Synthesized) -> None:
    queue_id, dead_letter_id = outbox_ids(synthesized)
    outputs = synthesized.template.to_json()["Outputs"]

    assert outputs["EventOutboxQueueUrl"]["Value"] == {"Ref": queue_id}
    assert outputs["EventOutboxDeadLetterQueueArn"]["Value"] == {"Fn::GetAtt": [dead_letter_id, "Arn"]}


def test_the_readmes_redrive_command_moves_the_outbox_dead_letters_back(synthesized: Synthesized) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()

    (command,) = re.findall(r"aws sqs start-message-move-task --source-arn .*?--output text\)\"", readme, re.DOTALL)
    (output,) = re.findall(r"OutputKey=='(\w+)'", command)
    assert output == "EventOutboxDeadLetterQueueArn"
    assert output in synthesized.template.to_json()["Outputs"]
    # without --destination-arn, SQS moves the messages back to the queue they came from: the outbox
    assert "--destination-arn" not in command
    assert f"--stack-name {STACK_NAME}" in command
