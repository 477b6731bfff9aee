"""system.EVENT_QUEUES, system.WORK_QUEUES and system.SCHEDULES: rules, queues, dead-letter queues, consumers,
senders, alarms, schedules."""

from typing import Any

import pytest

from infra.events import QueueDelivery
from infra.system import EVENT_QUEUES, FUNCTIONS, SCHEDULES, WORK_QUEUES, ConsumedQueue, EventQueue, Schedule, WorkQueue
from local_stack.event_delivery import event_pattern
from tests.infra.synthesized import Synthesized

FUNCTIONS_BY_NAME = {function.name: function for function in FUNCTIONS}
DAY = 24 * 3600
CONSUMED_QUEUES: tuple[ConsumedQueue, ...] = (*EVENT_QUEUES, *WORK_QUEUES)


def delivery_of(synthesized: Synthesized, spec: ConsumedQueue) -> QueueDelivery:
    deliveries = synthesized.stack.event_queues if isinstance(spec, EventQueue) else synthesized.stack.work_queues
    return deliveries[spec.name]


def queue_ids(synthesized: Synthesized, spec: ConsumedQueue) -> tuple[str, str]:
    """The logical IDs of the queue and its dead-letter queue."""
    delivery = delivery_of(synthesized, spec)
    return synthesized.logical_id(delivery.queue), synthesized.logical_id(delivery.dead_letter_queue)


def arn_of(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def queue_policy(synthesized: Synthesized, queue_id: str) -> list[dict[str, Any]]:
    (policy,) = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in synthesized.of_type("AWS::SQS::QueuePolicy").values()
        if policy["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    statements: list[dict[str, Any]] = policy
    return statements


def rules_on_the_bus(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    bus_id = synthesized.logical_id(synthesized.stack.events.bus)
    return {
        logical_id: rule["Properties"]
        for logical_id, rule in synthesized.of_type("AWS::Events::Rule").items()
        if rule["Properties"].get("EventBusName") == {"Ref": bus_id}
    }


@pytest.mark.parametrize("spec", EVENT_QUEUES, ids=lambda spec: spec.name)
def test_a_rule_on_the_bus_sends_the_queues_detail_types_to_the_queue(
    synthesized: Synthesized, spec: EventQueue
) -> None:
    rule_id = synthesized.logical_id(synthesized.stack.event_queues[spec.name].rule)
    queue_id, dead_letter_id = queue_ids(synthesized, spec)

    rule = rules_on_the_bus(synthesized)[rule_id]
    # The local stack creates the same rule on the emulator.
    assert (
        rule["EventPattern"]
        == event_pattern(spec)
        == {"source": ["vmx.ai-connections"], "detail-type": list(spec.detail_types)}
    )
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == arn_of(queue_id)
    # What EventBridge cannot deliver waits in the dead-letter queue too.
    assert target["DeadLetterConfig"] == {"Arn": arn_of(dead_letter_id)}


@pytest.mark.parametrize("spec", WORK_QUEUES, ids=lambda spec: spec.name)
def test_a_work_queue_refuses_plain_http_admits_no_service_and_tells_its_senders_its_url(
    synthesized: Synthesized, spec: WorkQueue
) -> None:
    for queue_id in queue_ids(synthesized, spec):
        statements = queue_policy(synthesized, queue_id)
        # its senders are allowed by their own roles (tests/infra/test_permissions.py), nobody by the queue
        assert [{key: statement[key] for key in SSL_ONLY} for statement in statements] == [SSL_ONLY]
    queue_id, _ = queue_ids(synthesized, spec)
    for name in spec.senders:
        variables = synthesized.properties(synthesized.function_id(name))["Environment"]["Variables"]
        assert variables[spec.url_env_var] == {"Ref": queue_id}
    for function in FUNCTIONS:
        if function.name not in spec.senders:
            variables = synthesized.properties(synthesized.function_id(function.name))["Environment"]["Variables"]
            assert spec.url_env_var not in variables


def test_the_bus_has_exactly_the_rules_of_the_event_queues(synthesized: Synthesized) -> None:
    assert len(rules_on_the_bus(synthesized)) == len(EVENT_QUEUES)


@pytest.mark.parametrize("spec", CONSUMED_QUEUES, ids=lambda spec: spec.name)
def test_the_queue_is_encrypted_outlasts_its_consumers_retries_and_dead_letters_after_max_receives(
    synthesized: Synthesized, spec: ConsumedQueue
) -> None:
    queue_id, dead_letter_id = queue_ids(synthesized, spec)
    queue = synthesized.properties(queue_id)

    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] >= 4 * DAY
    assert queue["VisibilityTimeout"] >= 6 * FUNCTIONS_BY_NAME[spec.consumer].timeout_seconds
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": arn_of(dead_letter_id),
        "maxReceiveCount": spec.max_receive_count,
    }


@pytest.mark.parametrize("spec", CONSUMED_QUEUES, ids=lambda spec: spec.name)
def test_the_queue_holds_each_message_for_its_delivery_delay(synthesized: Synthesized, spec: ConsumedQueue) -> None:
    queue_id, _ = queue_ids(synthesized, spec)

    assert synthesized.properties(queue_id).get("DelaySeconds", 0) == spec.delivery_delay_seconds


@pytest.mark.parametrize("spec", CONSUMED_QUEUES, ids=lambda spec: spec.name)
def test_the_dead_letter_queue_is_encrypted_and_keeps_messages_fourteen_days(
    synthesized: Synthesized, spec: ConsumedQueue
) -> None:
    _, dead_letter_id = queue_ids(synthesized, spec)
    dead_letters = synthesized.properties(dead_letter_id)

    assert dead_letters["SqsManagedSseEnabled"] is True
    assert dead_letters["MessageRetentionPeriod"] == 14 * DAY
    assert "RedrivePolicy" not in dead_letters


SSL_ONLY = {
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": "sqs:*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


@pytest.mark.parametrize("spec", EVENT_QUEUES, ids=lambda spec: spec.name)
def test_both_queues_refuse_plain_http_and_take_messages_from_the_rule_alone(
    synthesized: Synthesized, spec: EventQueue
) -> None:
    rule_id = synthesized.logical_id(synthesized.stack.event_queues[spec.name].rule)

    for queue_id in queue_ids(synthesized, spec):
        statements = queue_policy(synthesized, queue_id)
        denies = [statement for statement in statements if statement["Effect"] == "Deny"]
        allows = [statement for statement in statements if statement["Effect"] == "Allow"]
        assert [{key: deny[key] for key in SSL_ONLY} for deny in denies] == [SSL_ONLY]
        assert denies[0]["Resource"] == arn_of(queue_id)
        (allow,) = allows
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert "sqs:SendMessage" in allow["Action"]
        assert allow["Resource"] == arn_of(queue_id)
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": arn_of(rule_id)}}


@pytest.mark.parametrize("spec", CONSUMED_QUEUES, ids=lambda spec: spec.name)
def test_the_consumer_reads_the_queue_in_batches_reporting_item_failures(
    synthesized: Synthesized, spec: ConsumedQueue
) -> None:
    queue_id, _ = queue_ids(synthesized, spec)

    (mapping,) = [
        mapping["Properties"]
        for mapping in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["EventSourceArn"] == arn_of(queue_id)
    ]
    assert mapping["FunctionName"] == {"Ref": synthesized.function_id(spec.consumer)}
    assert mapping["BatchSize"] == spec.batch_size
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_only_the_queues_consumers_have_event_sources(synthesized: Synthesized) -> None:
    mappings = synthesized.of_type("AWS::Lambda::EventSourceMapping").values()

    assert sorted(mapping["Properties"]["FunctionName"]["Ref"] for mapping in mappings) == sorted(
        synthesized.function_id(spec.consumer) for spec in CONSUMED_QUEUES
    )


@pytest.mark.parametrize("spec", CONSUMED_QUEUES, ids=lambda spec: spec.name)
def test_a_message_in_the_dead_letter_queue_raises_an_alarm_on_the_alarm_topic(
    synthesized: Synthesized, spec: ConsumedQueue
) -> None:
    alarm_id = synthesized.logical_id(delivery_of(synthesized, spec).alarm)
    _, dead_letter_id = queue_ids(synthesized, spec)
    topic_id = synthesized.logical_id(synthesized.stack.alarms.topic)

    alarm = synthesized.properties(alarm_id)
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letter_id, "QueueName"]}}]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_alarm_topic_is_encrypted_with_a_rotating_key_cloudwatch_may_use(synthesized: Synthesized) -> None:
    alarms = synthesized.stack.alarms
    key_id = synthesized.logical_id(alarms.key)
    topic_id = synthesized.logical_id(alarms.topic)

    assert synthesized.properties(topic_id)["KmsMasterKeyId"] == arn_of(key_id)
    key = synthesized.properties(key_id)
    assert key["EnableKeyRotation"] is True
    assert {
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
    } in key["KeyPolicy"]["Statement"]


def test_only_this_accounts_alarms_may_publish_to_the_topic_and_only_over_tls(synthesized: Synthesized) -> None:
    topic_id = synthesized.logical_id(synthesized.stack.alarms.topic)

    (policy,) = synthesized.of_type("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [statement for statement in statements if statement["Effect"] == "Allow"]
    (deny,) = [statement for statement in statements if statement["Effect"] == "Deny"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1][-1] == ":alarm:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_operators_find_the_alarm_topic_in_the_outputs(synthesized: Synthesized) -> None:
    outputs = synthesized.template.to_json()["Outputs"]

    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": synthesized.logical_id(synthesized.stack.alarms.topic)}


@pytest.mark.parametrize("spec", SCHEDULES, ids=lambda spec: spec.name)
def test_a_schedule_invokes_its_function_from_the_default_bus(synthesized: Synthesized, spec: Schedule) -> None:
    rule_id = synthesized.logical_id(synthesized.stack.schedules[spec.name].rule)
    function_arn = arn_of(synthesized.function_id(spec.function))

    rule = synthesized.properties(rule_id)
    assert rule["ScheduleExpression"] == spec.expression
    assert rule["State"] == "ENABLED"
    # schedules run on the default bus only
    assert "EventBusName" not in rule
    (target,) = rule["Targets"]
    assert target["Arn"] == function_arn
    (permission,) = [
        permission["Properties"]
        for permission in synthesized.of_type("AWS::Lambda::Permission").values()
        if permission["Properties"].get("SourceArn") == arn_of(rule_id)
    ]
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["FunctionName"] == function_arn
    assert permission["Principal"] == "events.amazonaws.com"


def test_there_are_no_other_rules(synthesized: Synthesized) -> None:
    assert len(synthesized.of_type("AWS::Events::Rule")) == len(EVENT_QUEUES) + len(SCHEDULES)
