"""How a completion is refused or fails, as the API answers it: light on imports, since every API function's
error classification (vmx.http.errors) reads these, and the completion path's weight belongs to completions."""

from dataclasses import dataclass
from datetime import datetime

from vmx.capacity.ledger import CapacityExceeded, WindowUsage
from vmx.capacity.limits import CapacityDimension, CapacityPeriod
from vmx.completions.provider_error import ProviderError
from vmx.errors import TooManyRequests

# Tokens reserved for the answer when a request sets no max_tokens; reconciled with the real usage after.
DEFAULT_COMPLETION_TOKENS = 4096


@dataclass(frozen=True)
class RateLimits:
    """The tightest window for requests and for tokens, for the x-ratelimit-* headers."""

    requests: WindowUsage | None = None
    tokens: WindowUsage | None = None
    # the priority class the request counted in, which the windows are seen by (x-vmx-priority-class)
    priority_class: str | None = None


class OverCapacity(TooManyRequests):
    def __init__(
        self,
        connection_name: str,
        exceeded: CapacityExceeded,
        rate_limits: RateLimits,
        tokens: int,
        refused_at: datetime,
        dimension: CapacityDimension | None = None,
    ):
        self.dimension = dimension
        # the instant the refusal was decided at: every header of the 429 is reckoned from it
        self.refused_at = refused_at
        message, self.retry_after_seconds = _told(connection_name, exceeded, tokens)
        super().__init__(message)
        self.exceeded = exceeded
        self.rate_limits = rate_limits


def _told(connection_name: str, exceeded: CapacityExceeded, tokens: int) -> tuple[str, int | None]:
    """The refusal's message, and its Retry-After: none where waiting cannot help."""
    period = "lifetime" if exceeded.period is CapacityPeriod.LIFETIME else f"per-{exceeded.period}"
    kind, limit = exceeded.limit_kind, exceeded.limit
    connection = f"AI connection '{connection_name}'"
    priority_class = f"priority class '{exceeded.priority_class}' of {connection}"
    reserved = f"this request reserves {tokens} (its prompt plus max_tokens, or {DEFAULT_COMPLETION_TOKENS} when unset)"
    if (kind == "requests" and limit == 0) or (kind == "tokens" and tokens > limit):
        # larger than the limit itself: waiting cannot help
        if exceeded.share is None and kind == "requests":
            return f"{connection} has a {period} limit of 0 requests: it admits none; raise the limit", None
        if exceeded.share is None:
            return (
                f"{connection} has a {period} limit of {limit} tokens and {reserved}; lower max_tokens or raise the limit",
                None,
            )
        if kind == "requests":
            return (
                f"{priority_class} can use none of its {period} requests: its shares of the limit round down to 0; change the class's shares",
                None,
            )
        return (
            f"{priority_class} can use at most {limit} of its {period} tokens and {reserved}; lower max_tokens or change the class's shares",
            None,
        )
    if exceeded.share == "maximum":
        message = f"{priority_class} reached its maximum share of the {period} {kind} limit: {limit} {kind}"
    elif exceeded.share == "shared":
        message = (
            f"{priority_class} has no {period} {kind} left: its guaranteed share is used, and so is the capacity "
            f"the classes share ({limit} {kind} open to it in all)"
        )
    else:
        message = f"{connection} reached its {period} limit of {limit} {kind}"
    if exceeded.retry_after_seconds is None:
        message += ", which never resets"
    return message, exceeded.retry_after_seconds


class ProviderFailure(Exception):
    """The provider refused or failed; carries the connection's rate-limit state for the response headers."""

    def __init__(self, error: ProviderError, rate_limits: RateLimits):
        super().__init__(str(error))
        self.error = error
        self.rate_limits = rate_limits
