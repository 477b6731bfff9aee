"""system.EVENT_QUEUES on the emulator: the same rules, queues and dead-letter queues as the stack, and a
poller per queue standing in for Lambda's SQS event source mapping.

moto's EventBridge delivers to SQS targets but cannot invoke Lambda, so each poller long-polls its queue,
hands the messages to the consumer handler as an SQS event through the same `LambdaRuntime` as the API
(invocations stay serialised), and deletes what the handler did not report in `batchItemFailures`, as an
event source mapping with ReportBatchItemFailures does. What failed becomes visible again after
LOCAL_VISIBILITY_TIMEOUT_SECONDS, and the queue's redrive policy moves it to the dead-letter queue after
`max_receive_count` receives, so retries and dead letters behave as in AWS, only faster.

moto's EventBridge leaves `account` out of the events it delivers; the poller puts it back (the local
account), so consumers read what EventBridge sends in AWS and need no leniency for the emulator.

Schedules (system.SCHEDULES) are not run locally.
"""

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from infra.system import EVENT_SOURCE, EventQueue, WorkQueue
from local_stack.lambda_runtime import ACCOUNT_ID, REGION, Invoke

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient

logger = logging.getLogger("local_stack")

# Short, so that a failed record is retried within seconds rather than after the stack's 90 s.
LOCAL_VISIBILITY_TIMEOUT_SECONDS = 2
# How long one receive waits for a message; also how long a poller may take to notice it should stop.
WAIT_SECONDS = 1
# ReceiveMessage returns at most this many; Lambda gathers larger batches over a batching window.
MAX_MESSAGES_PER_RECEIVE = 10
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600


class SqsClient(Protocol):
    """The calls the local stack makes to SQS (boto3's SQS client; the project has no stubs for it)."""

    def create_queue(self, *, QueueName: str, Attributes: Mapping[str, str]) -> Mapping[str, Any]: ...

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: Sequence[str]) -> Mapping[str, Any]: ...

    def receive_message(
        self,
        *,
        QueueUrl: str,
        MaxNumberOfMessages: int,
        WaitTimeSeconds: int,
        MessageSystemAttributeNames: Sequence[str],
        MessageAttributeNames: Sequence[str],
    ) -> Mapping[str, Any]: ...

    def delete_message_batch(self, *, QueueUrl: str, Entries: Sequence[Mapping[str, str]]) -> Mapping[str, Any]: ...


def event_pattern(spec: EventQueue) -> dict[str, list[str]]:
    """The rule's pattern, as the stack writes it (infra.events.event_pattern; a test holds the two together)."""
    return {"source": [EVENT_SOURCE], "detail-type": list(spec.detail_types)}


@dataclass(frozen=True)
class LocalQueue:
    spec: EventQueue | WorkQueue
    url: str
    arn: str
    dead_letter_url: str
    # None for a work queue, which its senders send to directly
    rule_name: str | None


def provision_event_queues(
    sqs: SqsClient,
    events: "EventBridgeClient",
    queues: Iterable[EventQueue | WorkQueue],
    bus_name: str,
    name_prefix: str,
    visibility_timeout_seconds: int = LOCAL_VISIBILITY_TIMEOUT_SECONDS,
) -> list[LocalQueue]:
    """For each queue: its dead-letter queue, the queue with its redrive policy, and (for an event queue) the
    rule on the bus."""
    provisioned = []
    for spec in queues:
        dead_letter_url = sqs.create_queue(
            QueueName=f"{name_prefix}{spec.name}-dlq",
            Attributes={"MessageRetentionPeriod": str(DEAD_LETTER_RETENTION_SECONDS)},
        )["QueueUrl"]
        dead_letter_arn = _queue_arn(sqs, dead_letter_url)
        url = sqs.create_queue(
            QueueName=f"{name_prefix}{spec.name}",
            Attributes={
                "VisibilityTimeout": str(visibility_timeout_seconds),
                "DelaySeconds": str(spec.delivery_delay_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": spec.max_receive_count}
                ),
            },
        )["QueueUrl"]
        arn = _queue_arn(sqs, url)
        if not isinstance(spec, EventQueue):
            provisioned.append(LocalQueue(spec, url, arn, dead_letter_url, None))
            continue
        rule_name = f"{name_prefix}{spec.name}"
        events.put_rule(
            Name=rule_name,
            EventBusName=bus_name,
            EventPattern=json.dumps(event_pattern(spec)),
            Description=f"{', '.join(spec.detail_types)} events to the {spec.consumer} function's queue",
        )
        events.put_targets(
            Rule=rule_name,
            EventBusName=bus_name,
            Targets=[{"Id": "queue", "Arn": arn, "DeadLetterConfig": {"Arn": dead_letter_arn}}],
        )
        provisioned.append(LocalQueue(spec, url, arn, dead_letter_url, rule_name))
    return provisioned


def _queue_arn(sqs: SqsClient, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def sqs_event(messages: Iterable[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to a function, from ReceiveMessage's messages."""
    records = []
    for message in messages:
        body = with_account(message["Body"])
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": body,
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {
                    name: _lambda_message_attribute(value)
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def with_account(body: str) -> str:
    """An EventBridge event's JSON with the `account` that EventBridge sets and moto leaves out; any other
    body as it is."""
    try:
        event = json.loads(body)
    except ValueError:
        return body
    if not isinstance(event, dict) or "detail-type" not in event or "account" in event:
        return body
    return json.dumps({**event, "account": ACCOUNT_ID})


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": list(value.get("BinaryListValues", [])),
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = value["BinaryValue"]
    return attribute


def failed_message_ids(message_ids: Sequence[str], result: Any) -> set[str]:
    """The records of a batch to leave on the queue, given what the handler returned, as Lambda reads it.

    Nothing, `{}` or an empty or null `batchItemFailures` is a complete success. A response Lambda cannot
    read (not a map, an item without a string `itemIdentifier`, an identifier not in the batch) fails the
    whole batch.
    """
    if result is None:
        return set()
    if not isinstance(result, Mapping):
        return set(message_ids)
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(message_ids)
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return set(message_ids)
        failed.add(identifier)
    return failed


class QueuePoller:
    """Lambda's SQS event source mapping for one queue, on a thread of its own."""

    def __init__(self, queue: LocalQueue, sqs: SqsClient, invoke: Invoke) -> None:
        self._queue = queue
        self._sqs = sqs
        self._invoke = invoke
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"queue-{queue.spec.name}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Asks the poller to stop: it does, at most one receive wait and one invocation later."""
        self._stopping.set()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError):
                if self._stopping.is_set():
                    break
                logger.exception("cannot poll the %s queue; trying again", self._queue.spec.name)
                self._stopping.wait(WAIT_SECONDS)

    def poll_once(self) -> None:
        """One receive, one invocation if anything came, and the deletes the consumer's answer calls for."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue.url,
            MaxNumberOfMessages=min(self._queue.spec.batch_size, MAX_MESSAGES_PER_RECEIVE),
            WaitTimeSeconds=WAIT_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return
        consumer = self._queue.spec.consumer
        try:
            result = self._invoke(consumer, sqs_event(messages, self._queue.arn))
        except Exception:
            # As in AWS, a function error fails the whole batch: every record is received again.
            logger.exception("function %s failed; its %d records go back to the queue", consumer, len(messages))
            return
        message_ids = [message["MessageId"] for message in messages]
        failed = failed_message_ids(message_ids, result)
        done = [message for message in messages if message["MessageId"] not in failed]
        if done:
            not_deleted = self._sqs.delete_message_batch(
                QueueUrl=self._queue.url,
                Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(done)],
            ).get("Failed", [])
            if not_deleted:
                logger.warning(
                    "%d processed records of the %s queue were not deleted and will be delivered again",
                    len(not_deleted),
                    self._queue.spec.name,
                )
        if failed:
            logger.info(
                "function %s failed %d of %d records; they go back to the queue", consumer, len(failed), len(messages)
            )


class EventDelivery:
    """The pollers of every local queue, started and stopped together."""

    def __init__(self, queues: Iterable[LocalQueue], sqs: SqsClient, invoke: Invoke) -> None:
        self._pollers = [QueuePoller(queue, sqs, invoke) for queue in queues]

    def __enter__(self) -> "EventDelivery":
        for poller in self._pollers:
            poller.start()
        return self

    def __exit__(self, *_: object) -> None:
        for poller in self._pollers:
            poller.stop()
        for poller in self._pollers:
            poller.join()
