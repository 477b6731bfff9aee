"""Where an event that EventBridge would not take goes instead: an SQS queue (system.WORK_QUEUES' event-outbox),
whose consumer puts it on the bus later, retried by SQS and dead-lettered after that, so no event is lost to a
bus that is throttled, failing or unreachable for a while. A message is one PutEvents entry as JSON (`Time` in
ISO 8601), without the bus (the consumer puts it on its own), its `eventId` inside, so consumers still drop
duplicates: an entry whose PutEvents timed out may have reached the bus as well."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from vmx.events.models import EVENT_SOURCE

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_sqs.client import SQSClient

# SendMessageBatch's own limits: messages per call, and bytes per call.
_MESSAGES_PER_CALL = 10
_BYTES_PER_CALL = 256 * 1024


class EventOutbox(Protocol):
    def keep(self, entries: Sequence["PutEventsRequestEntryTypeDef"]) -> list[int]:
        """Keeps the entries for later; returns the positions of those it could not keep."""
        ...


class SqsEventOutbox:
    def __init__(self, client: "SQSClient", queue_url: str):
        self._client = client
        self._queue_url = queue_url

    def keep(self, entries: Sequence["PutEventsRequestEntryTypeDef"]) -> list[int]:
        bodies = [message_body(entry) for entry in entries]
        lost: list[int] = []
        for batch in _batches(bodies):
            lost += self._send(batch, bodies)
        return lost

    def _send(self, batch: list[int], bodies: list[str]) -> list[int]:
        try:
            response = self._client.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(position), "MessageBody": bodies[position]} for position in batch],
            )
        except (BotoCoreError, ClientError):
            return batch
        return [int(failed["Id"]) for failed in response.get("Failed", [])]


def message_body(entry: "PutEventsRequestEntryTypeDef") -> str:
    """The entry as the outbox keeps it: JSON, without its bus, its Time in ISO 8601."""
    kept: dict[str, object] = {key: value for key, value in entry.items() if key != "EventBusName"}
    if isinstance(time := kept.get("Time"), datetime):
        kept["Time"] = time.isoformat()
    return json.dumps(kept)


def _batches(bodies: list[str]) -> list[list[int]]:
    batches: list[list[int]] = []
    size = 0
    for position, body in enumerate(bodies):
        length = len(body.encode())
        if not batches or len(batches[-1]) == _MESSAGES_PER_CALL or size + length > _BYTES_PER_CALL:
            batches.append([])
            size = 0
        batches[-1].append(position)
        size += length
    return batches


class UnreadableEntry(ValueError):
    pass


class OutboxEntryNotPublished(Exception):
    """EventBridge did not take the entry this time; its message is delivered again."""


class EventOutboxConsumer:
    """Puts kept entries on the bus, one message at a time (the outbox is used only while the bus fails)."""

    def __init__(self, client: "EventBridgeClient", bus_name: str):
        self._client = client
        self._bus_name = bus_name

    def publish(self, body: str) -> None:
        """Raises UnreadableEntry for a body no retry can publish, OutboxEntryNotPublished when EventBridge
        refused it for now, and botocore's errors when the call failed."""
        try:
            entry: Any = json.loads(body)
        except ValueError:
            raise UnreadableEntry("not JSON") from None
        if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) for key in _REQUIRED):
            raise UnreadableEntry("not a PutEvents entry: Source, DetailType and Detail are needed")
        if entry["Source"] != EVENT_SOURCE:
            raise UnreadableEntry("not one of our events: its Source is another")
        if "Time" in entry and not isinstance(entry["Time"], str):
            raise UnreadableEntry("its Time is not a string")
        on_this_bus: Any = {**entry, "EventBusName": self._bus_name}
        response = self._client.put_events(Entries=[on_this_bus])
        if response.get("FailedEntryCount"):
            code = response["Entries"][0].get("ErrorCode", "unknown")
            raise OutboxEntryNotPublished(f"EventBridge did not take the entry ({code})")


_REQUIRED = ("Source", "DetailType", "Detail")
