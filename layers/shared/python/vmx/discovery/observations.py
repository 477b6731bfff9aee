"""Observed limits against what a connection shows, so that the gateway publishes RateLimitsObserved only
when a provider reports something new. What a connection shows is its `discoveredCapacity`, as the consumer
of those events records it:

    {"models": {"<model>": {"capacity": [{"period": "minute", "requests": 10000, "tokens": 30000000}],
                            "observedAt": "...", "source": "response-headers"}}}

where a kind of limit the provider did not report is absent or null.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from vmx.capacity.limits import CapacityPeriod
from vmx.connections.models import Connection
from vmx.discovery.headers import ObservedLimit, limits_from_headers
from vmx.events.models import ObservedCapacity, RateLimitsObserved


class _ShownLimit(BaseModel):
    # fields this code does not compare are ignored, like observedAt and source one level up
    model_config = ConfigDict(frozen=True, alias_generator=to_camel)

    period: CapacityPeriod
    requests: int | None = None
    tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class _ShownModel(BaseModel):
    capacity: list[_ShownLimit]


class _Shown(BaseModel):
    models: dict[str, _ShownModel]


def rate_limits_observed(
    connection: Connection, model: str, headers: Mapping[str, str], occurred_at: datetime
) -> RateLimitsObserved | None:
    """The event to publish after a provider answered (or refused) with these rate-limit headers, or None when
    they report nothing, or nothing the connection does not already show for the model."""
    observed = limits_from_headers(connection.provider, headers)
    if observed is None or not differs(observed, connection.discovered_capacity, model):
        return None
    return RateLimitsObserved(
        occurred_at=occurred_at,
        workspace_id=connection.workspace_id,
        environment_id=connection.environment_id,
        connection_id=connection.connection_id,
        connection_name=connection.name,
        provider=connection.provider,
        model=model,
        capacity=[_wire(limit) for limit in observed],
        source="response-headers",
    )


def differs(observed: Sequence[ObservedLimit], discovered_capacity: Mapping[str, Any] | None, model: str) -> bool:
    """True unless the connection's discoveredCapacity shows exactly these limits for the model, in any order.
    What cannot be read differs: the next observation then replaces it."""
    try:
        shown = _Shown.model_validate(discovered_capacity or {"models": {}}).models.get(model)
    except ValidationError:
        return True
    return shown is None or {_domain(limit) for limit in shown.capacity} != set(observed)


def _wire(limit: ObservedLimit) -> ObservedCapacity:
    return ObservedCapacity(
        period=limit.period,
        requests=limit.requests,
        tokens=limit.tokens,
        input_tokens=limit.input_tokens,
        output_tokens=limit.output_tokens,
    )


def _domain(limit: _ShownLimit) -> ObservedLimit:
    return ObservedLimit(limit.period, limit.requests, limit.tokens, limit.input_tokens, limit.output_tokens)
