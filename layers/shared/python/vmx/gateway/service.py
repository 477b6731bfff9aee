"""Completions through a connection: the model address, allowed models, capacity, credentials, the provider."""

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus

from vmx.access.policy import Action, Principal, authorize
from vmx.capacity.ledger import (
    CapacityCounters,
    CapacityExceeded,
    CounterScope,
    Reservation,
    WindowLimit,
    WindowUsage,
    limits_for,
    tightest,
)
from vmx.clock import Clock
from vmx.completions.openai_models import ChatCompletion, ChatCompletionRequest, estimate_prompt_tokens
from vmx.completions.providers import DEFAULT_MODELS, ProviderCall, ProviderError, ProviderResult
from vmx.connections.capacity import CapacityDimension, CapacityPeriod
from vmx.connections.models import Connection
from vmx.connections.ports import ConnectionRepository
from vmx.connections.service import ConnectionScope
from vmx.discovery.observations import rate_limits_observed
from vmx.errors import ErrorDetail, Forbidden, NotFound, TooManyRequests
from vmx.events.models import CompletionRecorded, EventDetail, RefusedLimit
from vmx.events.publisher import EventPublisher
from vmx.gateway.credentials_cache import CredentialCache
from vmx.gateway.model_address import ModelAddress, parse_model

# Tokens reserved for the answer when a request sets no max_tokens; reconciled with the real usage after.
DEFAULT_COMPLETION_TOKENS = 4096

ProviderCaller = Callable[[ProviderCall], ProviderResult]


@dataclass(frozen=True)
class RateLimits:
    """The tightest window for requests and for tokens, for the x-ratelimit-* headers."""

    requests: WindowUsage | None = None
    tokens: WindowUsage | None = None


@dataclass(frozen=True)
class CompletionOutcome:
    completion: ChatCompletion
    rate_limits: RateLimits


class OverCapacity(TooManyRequests):
    def __init__(
        self,
        connection_name: str,
        exceeded: CapacityExceeded,
        rate_limits: RateLimits,
        tokens: int,
        dimension: CapacityDimension | None = None,
    ):
        self.dimension = dimension
        period = "lifetime" if exceeded.period is CapacityPeriod.LIFETIME else f"per-{exceeded.period}"
        message = (
            f"AI connection '{connection_name}' reached its {period} limit of {exceeded.limit} {exceeded.limit_kind}"
        )
        self.retry_after_seconds = exceeded.retry_after_seconds
        if exceeded.limit_kind == "tokens" and tokens > exceeded.limit:
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


class CompletionService:
    def __init__(
        self,
        connections: ConnectionRepository,
        counters: CapacityCounters,
        credentials: CredentialCache,
        call_provider: ProviderCaller,
        clock: Clock,
        provider_timeout_seconds: float,
        events: EventPublisher,
    ):
        self._events = events
        self._connections = connections
        self._counters = counters
        self._credentials = credentials
        self._call_provider = call_provider
        self._clock = clock
        self._provider_timeout_seconds = provider_timeout_seconds

    def complete(
        self, principal: Principal, scope: ConnectionScope, request: ChatCompletionRequest, source_ip: str
    ) -> CompletionOutcome:
        authorize(principal, Action.USE_CONNECTIONS, scope.workspace_id, scope.environment_id)
        address = parse_model(request.model)
        connection = self._connections.get_by_name(scope.workspace_id, scope.environment_id, address.connection_name)
        if connection is None:
            message = f"model '{address}' not found: no AI connection named '{address.connection_name}' here"
            raise NotFound(message, [ErrorDetail(field="model", message=message)], code="model_not_found")
        attempt = _Attempt(connection, address.model_id, request.stream, started=self._clock())
        try:
            outcome, headers = self._complete(connection, address, request, source_ip)
        except OverCapacity as refused:
            self._publish(attempt.refused(refused, self._clock()))
            raise
        except ProviderFailure as failure:
            error = failure.error
            self._publish(attempt.failed(error.status, error.code, self._clock()), error.rate_limit_headers, attempt)
            raise
        except Forbidden as refusal:
            self._publish(attempt.failed(HTTPStatus.FORBIDDEN, refusal.code, self._clock()))
            raise
        self._publish(attempt.succeeded(outcome.completion, self._clock()), headers, attempt)
        return outcome

    def _complete(
        self, connection: Connection, address: ModelAddress, request: ChatCompletionRequest, source_ip: str
    ) -> tuple[CompletionOutcome, dict[str, str]]:
        _check_allowed(connection, address.model_id)
        now = self._clock()
        reserved_tokens = estimate_prompt_tokens(request) + _answer_tokens(request)
        reservations = self._reserve(connection, source_ip, reserved_tokens, now)
        try:
            result = self._call_provider(
                ProviderCall(
                    provider=connection.provider,
                    model=address.model_id,
                    settings=connection.settings,
                    secrets=self._credentials.secrets_of(connection),
                    request=request,
                    timeout_seconds=self._provider_timeout_seconds,
                )
            )
        except ProviderError as error:
            self._reconcile(reservations, 0)
            raise ProviderFailure(error, self._rate_limits(connection, source_ip)) from error
        usage = result.completion.usage
        actual_tokens = usage.total_tokens if usage else reserved_tokens
        self._reconcile(reservations, actual_tokens)
        completion = result.completion.model_copy(update={"model": str(address)})
        return CompletionOutcome(completion, _after(reservations, actual_tokens)), result.rate_limit_headers

    def _publish(
        self, recorded: CompletionRecorded, headers: Mapping[str, str] | None = None, attempt: "_Attempt | None" = None
    ) -> None:
        """One CompletionRecorded per attempt, plus RateLimitsObserved when the provider reported limits that
        the connection does not show yet. Publishing never fails the request (the publisher says so)."""
        events: list[EventDetail] = [recorded]
        if headers and attempt is not None:
            observed = rate_limits_observed(attempt.connection, attempt.model, headers, recorded.occurred_at)
            if observed is not None:
                events.append(observed)
        self._events.publish(events)

    def list_models(self, principal: Principal, scope: ConnectionScope) -> list[str]:
        authorize(principal, Action.USE_CONNECTIONS, scope.workspace_id, scope.environment_id)
        models: list[str] = []
        for connection in self._connections.list_all(scope.workspace_id, scope.environment_id):
            offered = connection.allowed_models or DEFAULT_MODELS[connection.provider]
            models.extend(f"{connection.name}/{model}" for model in offered)
        return sorted(models)

    def _reserve(self, connection: Connection, source_ip: str, tokens: int, now: datetime) -> list[Reservation]:
        """All of the connection's scopes admit the request, or none keeps it counted."""
        reservations: list[Reservation] = []
        admitted = False
        counter_scope: CounterScope | None = None
        try:
            for counter_scope, limits in self._scoped_limits(connection, source_ip):
                # a scope that limits no tokens does not count them, and so needs no reconciling after
                counted = tokens if any(limit.tokens is not None for limit in limits) else 0
                reservations.append(self._counters.reserve(counter_scope, limits, counted, now))
            admitted = True
        except CapacityExceeded as exceeded:
            rate_limits = self._rate_limits(connection, source_ip)
            dimension = CapacityDimension.SOURCE_IP if counter_scope and counter_scope.source_ip else None
            raise OverCapacity(connection.name, exceeded, rate_limits, tokens, dimension) from None
        finally:
            if not admitted:
                for reservation in reservations:
                    self._counters.release(reservation)
        return reservations

    def _reconcile(self, reservations: list[Reservation], actual_tokens: int) -> None:
        now = self._clock()
        for reservation in reservations:
            if reservation.tokens:
                self._counters.reconcile(reservation, actual_tokens, now)

    def _rate_limits(self, connection: Connection, source_ip: str) -> RateLimits:
        now = self._clock()
        usages = [
            usage
            for counter_scope, limits in self._scoped_limits(connection, source_ip)
            for usage in self._counters.usage(counter_scope, limits, now)
        ]
        requests, tokens = tightest(usages)
        return RateLimits(requests, tokens)

    @staticmethod
    def _scoped_limits(connection: Connection, source_ip: str) -> list[tuple[CounterScope, list[WindowLimit]]]:
        scoped = [
            (CounterScope(connection.connection_id, None), limits_for(connection.capacity, None)),
            (
                CounterScope(connection.connection_id, source_ip),
                limits_for(connection.capacity, CapacityDimension.SOURCE_IP),
            ),
        ]
        return [(counter_scope, limits) for counter_scope, limits in scoped if limits]


@dataclass(frozen=True)
class _Attempt:
    """What CompletionRecorded says about one request, whatever its outcome."""

    connection: Connection
    model: str
    stream: bool
    started: datetime

    def succeeded(self, completion: ChatCompletion, now: datetime) -> CompletionRecorded:
        usage = completion.usage
        return self._recorded(
            now,
            status=200,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def refused(self, refusal: OverCapacity, now: datetime) -> CompletionRecorded:
        exceeded = refusal.exceeded
        limit = RefusedLimit(
            period=exceeded.period,
            kind=exceeded.limit_kind,
            limit=exceeded.limit,
            dimension=refusal.dimension,
        )
        return self._recorded(now, status=429, refused_limit=limit, error_code=refusal.code)

    def failed(self, status: int, error_code: str, now: datetime) -> CompletionRecorded:
        return self._recorded(now, status=status, error_code=error_code)

    def _recorded(
        self,
        now: datetime,
        status: int,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        refused_limit: RefusedLimit | None = None,
        error_code: str | None = None,
    ) -> CompletionRecorded:
        return CompletionRecorded(
            occurred_at=now,
            workspace_id=self.connection.workspace_id,
            environment_id=self.connection.environment_id,
            connection_id=self.connection.connection_id,
            connection_name=self.connection.name,
            provider=self.connection.provider,
            model=self.model,
            status=status,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=max(round((now - self.started).total_seconds() * 1000), 0),
            refused_by_capacity=refused_limit is not None,
            refused_limit=refused_limit,
            error_code=error_code,
            stream=self.stream,
        )


def _after(reservations: list[Reservation], actual_tokens: int) -> RateLimits:
    """The windows as the reservations left them, with the tokens corrected to what was actually used."""
    usages = [
        dataclasses.replace(usage, tokens_used=usage.tokens_used + actual_tokens - reservation.tokens)
        if reservation.tokens
        else usage
        for reservation in reservations
        for usage in reservation.usage
    ]
    requests, tokens = tightest(usages)
    return RateLimits(requests, tokens)


def _check_allowed(connection: Connection, model_id: str) -> None:
    if connection.allowed_models is not None and model_id not in connection.allowed_models:
        allowed = ", ".join(connection.allowed_models)
        raise Forbidden(
            f"model '{model_id}' is not allowed on AI connection '{connection.name}'; allowed models: {allowed}",
            [ErrorDetail(field="model", message=f"allowed models: {allowed}")],
            code="model_not_allowed",
        )


def _answer_tokens(request: ChatCompletionRequest) -> int:
    limit = request.max_completion_tokens or request.max_tokens
    return limit if limit is not None else DEFAULT_COMPLETION_TOKENS
