"""Reading an EventBridge event out of an SQS message body, and refusing for good what can never be read."""

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Detail = TypeVar("Detail", bound=BaseModel)


class PoisonMessage(Exception):
    """No retry can process this message. The consumer fails it like any other record, so after the queue's
    maxReceiveCount it moves to the dead-letter queue while the rest of its batch succeeds; the distinct
    type lets the handler log it as the message's fault rather than ours."""


class _Envelope(BaseModel):
    # `id`, `source`, `time`, `account` and `region` go unread: the local emulator leaves some of them out
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]


def event_detail(record_body: str, detail_type: str, model: type[Detail]) -> Detail:
    """The detail of the EventBridge event in `record_body`, which must be of `detail_type`."""
    try:
        envelope = _Envelope.model_validate_json(record_body)
    except ValidationError as exc:
        raise PoisonMessage(f"not an EventBridge event: {_reasons(exc)}") from None
    if envelope.detail_type != detail_type:
        raise PoisonMessage(f"a {envelope.detail_type[:64]!r} event, not a {detail_type}")
    try:
        return model.model_validate(envelope.detail)
    except ValidationError as exc:
        raise PoisonMessage(f"invalid {detail_type} detail: {_reasons(exc)}") from None


def _reasons(exc: ValidationError) -> str:
    """Where and why, never the values: a message may be large, and is not ours to log whole."""
    return "; ".join(f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}" for error in exc.errors())
