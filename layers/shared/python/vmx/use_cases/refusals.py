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
        period = "lifetime" if exceeded.period is CapacityPeriod.LIFETIME else f"per-{exceeded.period}"
        message = (
            f"AI connection '{connection_name}' reached its {period} limit of {exceeded.limit} {exceeded.limit_kind}"
        )
        if exceeded.share == "maximum":
            message = (
                f"priority class '{exceeded.priority_class}' of AI connection '{connection_name}' reached its maximum "
                f"share of the {period} {exceeded.limit_kind} limit: {exceeded.limit} {exceeded.limit_kind}"
            )
        elif exceeded.share == "shared":
            message = (
                f"priority class '{exceeded.priority_class}' of AI connection '{connection_name}' has no "
                f"{period} {exceeded.limit_kind} left: its guaranteed share is used and the other classes took "
                f"the rest of the {exceeded.limit} {exceeded.limit_kind} open to it"
            )
        self.retry_after_seconds = exceeded.retry_after_seconds
        if exceeded.share is not None and exceeded.limit_kind == "tokens" and tokens > exceeded.limit:
            message = (
                f"priority class '{exceeded.priority_class}' of AI connection '{connection_name}' can use at most "
                f"{exceeded.limit} of its {period} tokens and this request reserves {tokens} (its prompt plus max_tokens, "
                f"or {DEFAULT_COMPLETION_TOKENS} when unset); lower max_tokens or change the class's shares"
            )
            self.retry_after_seconds = None
        elif exceeded.limit_kind == "tokens" and tokens > exceeded.limit:
            # waiting cannot help a request that is larger than the limit itself
            message = (
                f"AI connection '{connection_name}' has a {period} limit of {exceeded.limit} tokens and this request "
                f"reserves {tokens} (its prompt plus max_tokens, or {DEFAULT_COMPLETION_TOKENS} when unset); "
                "lower max_tokens or raise the limit"
            )
            self.retry_after_seconds = None
        elif exceeded.retry_after_seconds is None:
            message += ", which never resets"
        super().__init__(message)
        self.exceeded = exceeded
        self.rate_limits = rate_limits


class ProviderFailure(Exception):
    """The provider refused or failed; carries the connection's rate-limit state for the response headers."""

    def __init__(self, error: ProviderError, rate_limits: RateLimits):
        super().__init__(str(error))
        self.error = error
        self.rate_limits = rate_limits
