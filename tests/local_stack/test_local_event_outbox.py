"""The event outbox on the emulator: provisioned from system.WORK_QUEUES like every queue, and drained by the real
event-outbox handler onto the bus, whose rules deliver each kept event to its consumer once."""

import dataclasses
import json
from typing import Any
from uuid import uuid4

import pytest

from functions.event_outbox import handler as outbox_handler
from infra import system
from infra.environments import environment_of
from local_stack.emulator import moto_client, provision
from local_stack.event_delivery import EventDelivery, provision_event_queues
from local_stack.lambda_runtime import LambdaRuntime
from local_stack.state import cipher_environment
from tests.local_stack.test_local_event_delivery import DELIVERY_SECONDS, FakeConsumer
from tests.local_stack.test_local_event_delivery import moto_endpoint as moto_endpoint  # the fixture
from tests.unit.events.samples import completion_recorded
from vmx.aws.event_outbox import EventOutboxConsumer, SqsEventOutbox
from vmx.events.models import put_events_entry

(OUTBOX,) = [queue for queue in system.WORK_QUEUES if queue.name == "event-outbox"]


def test_the_local_stack_provisions_the_outbox_and_tells_each_sender_its_url(moto_endpoint: str) -> None:
    provisioned = provision((), (), moto_endpoint, system.WORK_QUEUES)
    # the queues alone are provisioned here: the functions' tables get names only
    with_tables = dataclasses.replace(provisioned, table_names={table.logical_id: "-" for table in system.TABLES})
    resources = with_tables.resources(cipher_environment(bytes(32)), own_api_hosts="", console_origin=None)

    (outbox,) = [queue for queue in provisioned.queues if queue.spec is OUTBOX]
    told = {
        function.name: url
        for function in system.FUNCTIONS
        if (url := environment_of(function, resources).get(OUTBOX.url_env_var)) is not None
    }
    assert told == dict.fromkeys(OUTBOX.senders, outbox.url)
    attributes = moto_client("sqs", moto_endpoint).get_queue_attributes(
        QueueUrl=outbox.url, AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == OUTBOX.max_receive_count


def test_an_event_kept_in_the_outbox_reaches_its_consumer_once(
    moto_endpoint: str, request: pytest.FixtureRequest
) -> None:
    # Given the system's queues on a bus of this test's own, and an event kept in the outbox
    prefix = f"test-{uuid4().hex[:8]}-"
    bus_name = f"{prefix}bus"
    events = moto_client("events", moto_endpoint)
    events.create_event_bus(Name=bus_name)
    sqs = moto_client("sqs", moto_endpoint)
    queues = provision_event_queues(
        sqs, events, [*system.EVENT_QUEUES, OUTBOX], bus_name=bus_name, name_prefix=prefix, visibility_timeout_seconds=2
    )
    (outbox,) = [queue for queue in queues if queue.spec is OUTBOX]
    event = completion_recorded()
    assert SqsEventOutbox(sqs, outbox.url).keep([put_events_entry(event, "the-publishers-bus")]) == []

    # When the outbox's queue is delivered to the real handler, putting on this bus
    outbox_handler.function.dependencies.use(EventOutboxConsumer(events, bus_name))
    request.addfinalizer(lambda: outbox_handler.function.dependencies.use(None))
    usage = FakeConsumer()
    handlers: dict[str, Any] = {
        system.DISCOVERY.name: FakeConsumer(),
        system.USAGE.name: usage,
        system.CONNECTION_REMAINS.name: FakeConsumer(),
        system.EVENT_OUTBOX.name: outbox_handler.lambda_handler,
    }
    runtime = LambdaRuntime([system.DISCOVERY, system.USAGE, system.CONNECTION_REMAINS, system.EVENT_OUTBOX], handlers)
    with EventDelivery(queues, sqs, runtime.invoke):
        # Then its consumer gets it, once, and the outbox is empty
        assert usage.wait_for(lambda: len(usage.records) >= 1, DELIVERY_SECONDS * 2)
        assert not usage.wait_for(lambda: len(usage.records) > 1, 1)
    (record,) = usage.records
    assert json.loads(record["body"])["detail"]["eventId"] == str(event.event_id)
    left = sqs.get_queue_attributes(
        QueueUrl=outbox.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert left == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
