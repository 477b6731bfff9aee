"""What the consumers read from an event's detail: only the fields they use, camelCase as on the wire.

Unknown fields are ignored, so a publisher that adds a field does not turn messages into poison.
"""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator
from pydantic.alias_generators import to_camel

from vmx.capacity.limits import CapacityPeriod

Count = Annotated[StrictInt, Field(ge=0)]
Id = Annotated[str, Field(min_length=1, max_length=256)]


class _Wire(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        # a validation error's text may be logged: it names the fields, never their values
        hide_input_in_errors=True,
    )


class _Detail(_Wire):
    occurred_at: AwareDatetime

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class ObservedLimit(_Wire):
    """One window's limits as a provider reported them; None where it reported none."""

    period: CapacityPeriod
    requests: Count | None
    tokens: Count | None
    input_tokens: Count | None = None
    output_tokens: Count | None = None


class RateLimitsObservation(_Detail):
    """A RateLimitsObserved detail: what a provider reported for one model of a connection."""

    workspace_id: Id
    environment_id: Id
    connection_id: Id
    model: Id
    capacity: list[ObservedLimit] = Field(min_length=1, max_length=len(CapacityPeriod))
    source: Id


class RecordedCompletion(_Detail):
    """A CompletionRecorded detail: one completion attempt on a connection."""

    event_id: Id
    connection_id: Id
    status: Annotated[StrictInt, Field(ge=100, le=599)]
    prompt_tokens: Count
    completion_tokens: Count
    latency_ms: Count
    refused_by_capacity: StrictBool
    # a stream that failed after its 200 went out carries its error here
    error_code: str | None = None


class DeletedConnection(_Detail):
    """A ConnectionDeleted detail: which connection is gone."""

    workspace_id: Id
    environment_id: Id
    connection_id: Id
