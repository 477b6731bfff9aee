"""Each event's `detail` (version 1), the PutEvents entry it travels in, and how a delivered event is read back.

A detail is a public contract (`docs/events/`): camelCase, never a secret, and published with no field its
schema lacks (a reader ignores those, which a later v1 publisher may add). `eventId` is
ours, set once when the event is made, so it survives publish retries and consumers can drop duplicates;
EventBridge's own envelope `id` changes with every PutEvents that carries the event.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from vmx.capacity.ledger import ClassShare, LimitKind
from vmx.capacity.limits import CapacityDimension, CapacityPeriod
from vmx.connections.models import Connection
from vmx.providers.catalog import ProviderId

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

EVENT_SOURCE = "vmx.ai-connections"


class DetailType(StrEnum):
    RATE_LIMITS_OBSERVED = "RateLimitsObserved"
    COMPLETION_RECORDED = "CompletionRecorded"
    CONNECTION_CREATED = "ConnectionCreated"
    CONNECTION_UPDATED = "ConnectionUpdated"
    CONNECTION_DELETED = "ConnectionDeleted"


LimitSource = Literal["response-headers", "service-quotas"]
# How a streamed answer ended: the provider finished it, the client went away first, or it failed after the
# first piece had gone out (the provider's error, or the gateway's own).
StreamEnd = Literal["completed", "client-disconnected", "failed"]
Count = Annotated[StrictInt, Field(ge=0)]
Id = Annotated[str, Field(min_length=1, max_length=256)]


def _absent(value: object) -> bool:
    return value is None


def _field_title(name: str, _: object) -> str:
    return name.replace("_", " ").capitalize()


def _open_to_additions(schema: dict[str, Any]) -> None:
    # later v1 publishers may add fields (docs/events/README.md, Versioning): the schema must let them
    schema.pop("additionalProperties", None)


# In the validation context of `parse_event`: a reader ignores the fields it does not know.
_READING = "reading"


class _WireModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        hide_input_in_errors=True,
        field_title_generator=_field_title,
        # the published schemas describe what consumers receive, where every defaulted field is present
        json_schema_serialization_defaults_required=True,
        json_schema_extra=_open_to_additions,
    )

    @model_validator(mode="before")
    @classmethod
    def _ignore_unknown_when_reading(cls, data: Any, info: ValidationInfo) -> Any:
        """What we publish has no unknown field; what we read may come from a later v1 publisher."""
        if not (isinstance(info.context, dict) and info.context.get(_READING)) or not isinstance(data, dict):
            return data
        known = {field.alias or name for name, field in cls.model_fields.items()}
        return {key: value for key, value in data.items() if key in known}


class EventDetail(_WireModel):
    """What every event's detail carries."""

    detail_type: ClassVar[DetailType]

    version: Literal["1"] = Field(default="1", description="The detail's schema version.")
    event_id: UUID = Field(
        default_factory=uuid4,
        description="Set once by the publisher and kept across retries: consumers drop events whose id they have seen.",
    )
    occurred_at: AwareDatetime = Field(description="When it happened, in UTC.")
    workspace_id: Id
    environment_id: Id
    connection_id: Id

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class ObservedCapacity(_WireModel):
    """One window's limits as the provider reported them; absent kinds were not reported."""

    period: CapacityPeriod
    requests: Count | None
    tokens: Count | None
    input_tokens: Count | None = Field(default=None, exclude_if=_absent)
    output_tokens: Count | None = Field(default=None, exclude_if=_absent)

    @model_validator(mode="after")
    def _reports_something(self) -> Self:
        if (self.requests, self.tokens, self.input_tokens, self.output_tokens) == (None, None, None, None):
            raise ValueError("an observed window reports at least one limit")
        return self


class RateLimitsObserved(EventDetail):
    """A connection's limits for one model, as the provider reported them, when they differ from what it shows."""

    detail_type: ClassVar[DetailType] = DetailType.RATE_LIMITS_OBSERVED

    connection_name: Id
    provider: ProviderId
    model: Id = Field(description="The provider's own model id.")
    capacity: list[ObservedCapacity] = Field(min_length=1, max_length=len(CapacityPeriod))
    source: LimitSource = Field(
        description="response-headers: a provider's rate-limit response headers; service-quotas: AWS Service Quotas."
    )


class RefusedLimit(_WireModel):
    """The limit that had no room for the request."""

    period: CapacityPeriod
    kind: LimitKind
    limit: Count
    dimension: CapacityDimension | None = Field(default=None, description="source-ip: the client's own window.")
    priority_class: Id | None = Field(
        default=None, description="The priority class whose share had no room; null when the window's limit had none."
    )
    share: ClassShare | None = Field(
        default=None,
        description="Which share of the priority class: maximum, or shared (its guarantee and the part no class "
        "is guaranteed were in use); `limit` is that share.",
    )


class CompletionRecorded(EventDetail):
    """One completion attempt on a connection: how it ended, what it used and, if capacity refused it, why."""

    detail_type: ClassVar[DetailType] = DetailType.COMPLETION_RECORDED

    connection_name: Id
    provider: ProviderId
    model: Id = Field(description="The provider's own model id.")
    status: Annotated[StrictInt, Field(ge=100, le=599, description="The HTTP status the gateway answered.")]
    prompt_tokens: Count = Field(description="As the provider reported them; 0 when it was not called or failed.")
    completion_tokens: Count = Field(description="As the provider reported them; 0 when it was not called or failed.")
    latency_ms: Count = Field(description="From the request's arrival to its answer.")
    refused_by_capacity: StrictBool = Field(description="The connection's capacity refused it before the provider.")
    refused_limit: RefusedLimit | None
    error_code: Id | None = Field(description="The error's `code` in the answer; null on success.")
    stream: StrictBool
    stream_end: StreamEnd | None = Field(
        default=None,
        description="How a streamed answer ended once admitted and accepted by the provider: completed, "
        "client-disconnected (tokens are those produced until then) or failed (an error event ended "
        "it; the status stays the 200 already sent); null otherwise.",
    )
    usage_estimated: StrictBool = Field(
        default=False,
        description="The tokens are the gateway's estimate, because the provider reported no usage (a stream cut short).",
    )
    priority_class: Id | None = Field(
        default=None,
        description="The priority class the request counts in (its API key's, or the connection's default); null "
        "when the connection has no priority classes.",
    )

    @model_validator(mode="after")
    def _refusal_names_its_limit(self) -> Self:
        if self.refused_by_capacity != (self.refused_limit is not None):
            raise ValueError("refusedLimit is given exactly when refusedByCapacity is true")
        return self


class ConnectionChange(EventDetail):
    """A connection's metadata after a change; never its configuration or secrets."""

    name: Id
    provider: ProviderId
    connection_version: Annotated[StrictInt, Field(ge=1)] = Field(
        description="The connection's version (not the event schema's) after the change, or the one deleted."
    )
    actor: Id = Field(description="The id of the API key that made the change.")

    @classmethod
    def of(cls, connection: Connection, actor: str, occurred_at: datetime) -> Self:
        return cls(
            occurred_at=occurred_at,
            workspace_id=connection.workspace_id,
            environment_id=connection.environment_id,
            connection_id=connection.connection_id,
            name=connection.name,
            provider=connection.provider,
            connection_version=connection.version,
            actor=actor,
        )


class ConnectionCreated(ConnectionChange):
    """A connection was created."""

    detail_type: ClassVar[DetailType] = DetailType.CONNECTION_CREATED


class ConnectionUpdated(ConnectionChange):
    """A connection was changed."""

    detail_type: ClassVar[DetailType] = DetailType.CONNECTION_UPDATED


class ConnectionDeleted(ConnectionChange):
    """A connection was deleted."""

    detail_type: ClassVar[DetailType] = DetailType.CONNECTION_DELETED


DETAILS: Mapping[str, type[EventDetail]] = {
    kind.detail_type: kind
    for kind in (RateLimitsObserved, CompletionRecorded, ConnectionCreated, ConnectionUpdated, ConnectionDeleted)
}


def put_events_entry(event: EventDetail, bus_name: str) -> "PutEventsRequestEntryTypeDef":
    return {
        "Source": EVENT_SOURCE,
        "DetailType": event.detail_type.value,
        "Detail": event.model_dump_json(),
        "EventBusName": bus_name,
        # the envelope's `time` then says when it happened, not when a retry got through
        "Time": event.occurred_at,
    }


class InvalidEvent(ValueError):
    """Not one of our events in a form this code understands."""


class UnknownEventType(InvalidEvent):
    """Another source, or a detail-type or detail version this code does not know (a newer publisher's)."""


@dataclass(frozen=True)
class ReceivedEvent:
    # EventBridge's id, new with every PutEvents: use `detail.event_id` to drop duplicates
    id: str
    detail_type: DetailType
    time: datetime
    # absent from the local emulator's events
    account: str | None
    region: str | None
    detail: EventDetail


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    id: str
    source: str
    detail_type: str = Field(alias="detail-type")
    time: datetime
    account: str | None = None
    region: str | None = None
    detail: dict[str, Any]


def parse_event(body: str | bytes | Mapping[str, Any]) -> ReceivedEvent:
    """An EventBridge event as an SQS target receives it (the message body) or a Lambda target (a dict)."""
    try:
        # a JSONDecodeError and a ValidationError are both ValueErrors
        raw = json.loads(body) if isinstance(body, str | bytes) else body
        envelope = _Envelope.model_validate(raw)
    except ValueError as exc:
        raise InvalidEvent(f"not an EventBridge event: {_reason(exc)}") from None
    # what comes from the message is cut short in messages, which may be logged
    if envelope.source != EVENT_SOURCE:
        raise UnknownEventType(f"source '{envelope.source[:64]}' is not {EVENT_SOURCE}")
    kind = DETAILS.get(envelope.detail_type)
    if kind is None:
        raise UnknownEventType(f"unknown detail-type '{envelope.detail_type[:64]}'")
    version = envelope.detail.get("version")
    if version is None:
        raise InvalidEvent(f"invalid {kind.detail_type} detail: version: Field required")
    if version != "1":
        message = f"{kind.detail_type} version {str(version)[:16]!r} is not understood; this code reads version 1"
        raise UnknownEventType(message)
    try:
        detail = kind.model_validate(envelope.detail, context={_READING: True})
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {kind.detail_type} detail: {_reason(exc)}") from None
    return ReceivedEvent(envelope.id, kind.detail_type, envelope.time, envelope.account, envelope.region, detail)


def _reason(exc: ValueError) -> str:
    """Where and why, never the input (a detail could be large)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, error['loc'])) or 'event'}: {error['msg']}" for error in exc.errors())
    return str(exc)
