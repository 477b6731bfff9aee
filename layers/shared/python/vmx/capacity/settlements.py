"""Settlements kept for later: a reservation's release or reconcile that could not be written after its answer.

The completion path retries a failed settlement while its invocation has time (vmx.afterwards), then hands it
to a queue; the capacity-settlements consumer writes it from there, retried by SQS. Writing it late is safe:
the store applies a settlement once (ledger.py), and skips windows that have rolled over since. A settlement
that arrives after its reservation's mark was dropped as an orphan (capacity_store.ORPHANED_AFTER) changes
nothing, which leaves the reservation counted in full: capacity over-counted, never under.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vmx.capacity.ledger import CounterScope, Reservation, Split
from vmx.capacity.limits import CapacityPeriod


@dataclass(frozen=True)
class DeferredSettlement:
    reservation: Reservation
    # None: a release (the provider was never reached); otherwise the tokens the answer really used
    actual_tokens: int | None

    def to_json(self) -> str:
        """Version 1 without a priority class, as consumers from before classes read it (a rollback included);
        version 2 with one, which such a consumer refuses as poison rather than settle the class wrongly."""
        reservation = self.reservation
        in_class = reservation.priority_class is not None
        return _Message(
            version=2 if in_class else 1,
            connection_id=reservation.scope.connection_id,
            source_ip=reservation.scope.source_ip,
            request_id=reservation.request_id,
            windows=dict(reservation.windows),
            tokens=reservation.tokens,
            orphans=list(reservation.orphans),
            actual_tokens=self.actual_tokens,
            priority_class=reservation.priority_class,
            splits={
                period: _Split(requests=split.guaranteed_requests, tokens=split.guaranteed_tokens)
                for period, split in reservation.splits.items()
            },
        ).model_dump_json(exclude=None if in_class else {"priority_class", "splits"})

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Raises InvalidSettlement, naming fields and never quoting values, for text no retry can read."""
        try:
            message = _Message.model_validate_json(text)
        except ValidationError as exc:
            fields = sorted({".".join(str(part) for part in error["loc"]) or "body" for error in exc.errors()})
            raise InvalidSettlement(f"invalid deferred settlement: {', '.join(fields)}") from None
        reservation = Reservation(
            scope=CounterScope(message.connection_id, message.source_ip),
            request_id=message.request_id,
            windows=message.windows,
            tokens=message.tokens,
            usage=(),
            orphans=tuple(message.orphans),
            priority_class=message.priority_class,
            splits={period: Split(split.requests, split.tokens) for period, split in message.splits.items()},
        )
        return cls(reservation, message.actual_tokens)


class InvalidSettlement(ValueError):
    pass


class SettlementQueue(Protocol):
    def defer(self, settlement: DeferredSettlement) -> None:
        """Keeps the settlement durably for the consumer; raises when it cannot."""
        ...


class _Split(BaseModel):
    """What the reservation counted in its class's guarantee in one window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(ge=0)
    tokens: int = Field(ge=0)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    version: Literal[1, 2]
    connection_id: str = Field(min_length=1, max_length=256)
    source_ip: str | None = Field(max_length=64)
    request_id: str = Field(min_length=1, max_length=64)
    windows: Mapping[CapacityPeriod, str]
    tokens: int = Field(ge=0)
    orphans: list[str] = Field(max_length=1000)
    actual_tokens: int | None = Field(ge=0)
    # version 2: the class the reservation counted in, and what it counted in the class's guarantee per window
    priority_class: str | None = Field(default=None, min_length=1, max_length=32)
    splits: Mapping[CapacityPeriod, _Split] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _class_in_version_2(self) -> Self:
        if (self.version == 2) != (self.priority_class is not None):
            raise ValueError("priority_class is given in version 2, and only there")
        return self
