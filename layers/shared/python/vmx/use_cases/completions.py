"""Completions through a connection: the model address, allowed models, capacity, credentials, the provider."""

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from http import HTTPStatus
from typing import Protocol
from uuid import uuid4

from vmx.access.policy import Action, Principal, authorize
from vmx.afterwards import Afterwards
from vmx.capacity.ledger import (
    CapacityCounters,
    CapacityExceeded,
    CounterScope,
    Priority,
    Reservation,
    WindowLimit,
    WindowUsage,
    limits_for,
    tightest,
)
from vmx.capacity.limits import CapacityDimension
from vmx.capacity.settlements import DeferredSettlement, SettlementQueue
from vmx.clock import Clock
from vmx.completions.openai_models import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens_of,
)
from vmx.completions.providers import (
    DEFAULT_MODELS,
    ProviderCall,
    ProviderError,
    ProviderResult,
    ProviderStream,
)
from vmx.connections.models import Connection
from vmx.credentials.errors import CredentialsUnavailable, CredentialsUnreadable
from vmx.deadline import Deadline
from vmx.discovery.observations import rate_limits_observed
from vmx.errors import ErrorDetail, Forbidden, NotFound
from vmx.events.models import CompletionRecorded, EventDetail, RefusedLimit, StreamEnd
from vmx.events.ports import EventPublisher
from vmx.use_cases.connections import ConnectionScope
from vmx.use_cases.credentials_cache import CredentialCache
from vmx.use_cases.model_address import parse_model
from vmx.use_cases.refusals import DEFAULT_COMPLETION_TOKENS, OverCapacity, ProviderFailure, RateLimits

# What the client is answered when a connection's credentials cannot be opened (vmx.http.openai_errors).
CREDENTIALS_FAILURES: dict[type[Exception], tuple[int, str]] = {
    CredentialsUnavailable: (HTTPStatus.SERVICE_UNAVAILABLE, "unavailable"),
    CredentialsUnreadable: (HTTPStatus.BAD_GATEWAY, "credentials_unreadable"),
}

ProviderCaller = Callable[[ProviderCall], ProviderResult]
StreamOpener = Callable[[ProviderCall], ProviderStream]


@dataclass(frozen=True)
class CompletionOutcome:
    completion: ChatCompletion
    rate_limits: RateLimits


class ConnectionLookup(Protocol):
    def get_by_name(self, workspace_id: str, environment_id: str, name: str) -> Connection | None: ...

    def list_all(self, workspace_id: str, environment_id: str) -> list[Connection]: ...


@dataclass(frozen=True)
class StreamOutcome:
    """An admitted stream: the chunks for the client as the provider sends them (model renamed, the usage chunk
    only when the client asked for it), and the windows as the reservation left them."""

    chunks: Iterator[ChatCompletionChunk]
    rate_limits: RateLimits


class CompletionService:
    """Before the answer: the model address, allowed models, credentials and one capacity reservation. After it
    (through `afterwards`, which runs once the last byte has gone out): the reconcile and the events."""

    def __init__(
        self,
        connections: ConnectionLookup,
        counters: CapacityCounters,
        credentials: CredentialCache,
        call_provider: ProviderCaller,
        open_stream: StreamOpener,
        clock: Clock,
        idle_timeout_seconds: float,
        events: EventPublisher,
        settlements: SettlementQueue,
        settle_attempt_seconds: float,
        defer_seconds: float,
    ):
        """`settle_attempt_seconds` bounds one settling write of `counters`, and `defer_seconds` one send to
        `settlements` (their clients' timeouts and retries)."""
        self._events = events
        self._settlements = settlements
        self._settle_attempt_seconds = settle_attempt_seconds
        self._defer_seconds = defer_seconds
        self._connections = connections
        self._counters = counters
        self._credentials = credentials
        self._call_provider = call_provider
        self._open_stream = open_stream
        self._clock = clock
        self._idle_timeout_seconds = idle_timeout_seconds

    def complete(
        self,
        principal: Principal,
        scope: ConnectionScope,
        request: ChatCompletionRequest,
        source_ip: str,
        deadline: Deadline,
        afterwards: Afterwards,
    ) -> CompletionOutcome | StreamOutcome:
        """Raises OverCapacity, ProviderFailure (the provider refused before answering), NotFound or Forbidden.

        `deadline` is when the provider must have finished; a stream's pieces may each take the idle timeout.
        """
        admitted = self._admit(principal, scope, request, source_ip, deadline, afterwards)
        try:
            if request.stream:
                return self._stream(admitted, afterwards)
            return self._whole(admitted, afterwards)
        except ProviderError as error:
            # a provider that was reached may have counted the request: it keeps its request, no tokens
            self._settle_after(afterwards, admitted.reservations, (lambda: 0) if error.reached else None)
            outcome = admitted.attempt.failed(error.status, error.code)
            afterwards.add_within(
                "publish", partial(self._publish, admitted.attempt, outcome, error.rate_limit_headers)
            )
            raise ProviderFailure(error, _after(admitted.reservations, 0, admitted.attempt.priority_class)) from error

    def _admit(
        self,
        principal: Principal,
        scope: ConnectionScope,
        request: ChatCompletionRequest,
        source_ip: str,
        deadline: Deadline,
        afterwards: Afterwards,
    ) -> "_Admitted":
        """Everything that decides admission, and nothing else: what the client's first byte waits on."""
        authorize(principal, Action.USE_CONNECTIONS, scope.workspace_id, scope.environment_id)
        address = parse_model(request.model)
        connection = self._connections.get_by_name(scope.workspace_id, scope.environment_id, address.connection_name)
        if connection is None:
            message = f"model '{address}' not found: no AI connection named '{address.connection_name}' here"
            raise NotFound(message, [ErrorDetail(field="model", message=message)], code="model_not_found")
        priority = _priority(connection, principal)
        attempt = _Attempt(connection, address.model_id, request.stream, self._clock(), priority)
        try:
            _check_allowed(connection, address.model_id)
        except Forbidden as refusal:
            outcome = attempt.failed(HTTPStatus.FORBIDDEN, refusal.code)
            afterwards.add_within("publish", partial(self._publish, attempt, outcome, None))
            raise
        # Before the reservation: credentials that cannot be opened must not spend capacity.
        try:
            secrets = self._credentials.secrets_of(connection)
        except (CredentialsUnavailable, CredentialsUnreadable) as failure:
            status, code = CREDENTIALS_FAILURES[type(failure)]
            afterwards.add_within("publish", partial(self._publish, attempt, attempt.failed(status, code), None))
            raise
        prompt_tokens = estimate_prompt_tokens(request)
        answer_tokens = _answer_tokens(request)
        # The answer may not outgrow its reservation: a request that sets no limit is sent the one reserved.
        capped = (
            request.model_copy(update={"max_completion_tokens": answer_tokens})
            if request.output_token_limit is None
            else request
        )
        reserved_tokens = prompt_tokens + answer_tokens
        try:
            reservations = self._reserve(connection, priority, source_ip, reserved_tokens, self._clock(), afterwards)
        except OverCapacity as refused:
            afterwards.add_within("publish", partial(self._publish, attempt, attempt.refused(refused), None))
            raise
        call = ProviderCall(
            provider=connection.provider,
            model=address.model_id,
            settings=connection.settings,
            secrets=secrets,
            request=capped,
            # a whole answer has no pieces: it may take all the time there is
            timeout_seconds=self._idle_timeout_seconds if request.stream else deadline.left(),
            deadline=deadline,
        )
        return _Admitted(attempt, str(address), reservations, call, prompt_tokens, reserved_tokens)

    def _whole(self, admitted: "_Admitted", afterwards: Afterwards) -> CompletionOutcome:
        result = self._call_provider(admitted.call)
        usage = result.completion.usage
        self._settle_after(afterwards, admitted.reservations, lambda: usage.total_tokens)
        outcome = admitted.attempt.succeeded(usage)
        afterwards.add_within("publish", partial(self._publish, admitted.attempt, outcome, result.rate_limit_headers))
        completion = result.completion.model_copy(update={"model": admitted.model})
        rate_limits = _after(admitted.reservations, usage.total_tokens, admitted.attempt.priority_class)
        return CompletionOutcome(completion, rate_limits)

    def _stream(self, admitted: "_Admitted", afterwards: Afterwards) -> StreamOutcome:
        upstream = self._open_stream(admitted.call)
        tally = _StreamTally(admitted.prompt_tokens)

        def close() -> None:
            # a body closed before its first piece never ran the relay: its client went away all the same
            tally.end = tally.end or "client-disconnected"
            upstream.close()

        def publish(deadline: Deadline) -> None:
            self._publish(admitted.attempt, admitted.attempt.streamed(tally), upstream.rate_limit_headers, deadline)

        afterwards.add("close stream", close)
        self._settle_after(afterwards, admitted.reservations, lambda: tally.total_tokens)
        afterwards.add_within("publish", publish)
        chunks = _relay(upstream, tally, admitted.model, admitted.call.request.include_stream_usage)
        rate_limits = _after(admitted.reservations, admitted.reserved_tokens, admitted.attempt.priority_class)
        return StreamOutcome(chunks, rate_limits)

    def _publish(
        self, attempt: "_Attempt", outcome: "_Outcome", headers: Mapping[str, str] | None, deadline: Deadline
    ) -> None:
        """One CompletionRecorded per attempt, plus RateLimitsObserved when the provider reported limits that
        the connection does not show yet. Runs after the answer went out, so its time is the answer's end.
        Publishing never fails the request, and returns by `deadline` (the publisher says so)."""
        recorded = attempt.recorded(outcome, self._clock())
        events: list[EventDetail] = [recorded]
        if headers:
            observed = rate_limits_observed(attempt.connection, attempt.model, headers, recorded.occurred_at)
            if observed is not None:
                events.append(observed)
        self._events.publish(events, deadline)

    def list_models(self, principal: Principal, scope: ConnectionScope) -> list[str]:
        authorize(principal, Action.USE_CONNECTIONS, scope.workspace_id, scope.environment_id)
        models: list[str] = []
        for connection in self._connections.list_all(scope.workspace_id, scope.environment_id):
            offered = connection.allowed_models or DEFAULT_MODELS[connection.provider]
            models.extend(f"{connection.name}/{model}" for model in offered)
        return sorted(models)

    def _reserve(
        self,
        connection: Connection,
        priority: Priority | None,
        source_ip: str,
        tokens: int,
        now: datetime,
        afterwards: Afterwards,
    ) -> list[Reservation]:
        """All of the connection's scopes admit the request, or none keeps it counted; its own windows in
        `priority`'s class. A refusal is told from what the refusing write saw, at `now`: no read, and no window
        later than the refusal's."""
        request_id = uuid4().hex
        reservations: list[Reservation] = []
        admitted = False
        counter_scope: CounterScope | None = None
        try:
            for counter_scope, limits in self._scoped_limits(connection, source_ip):
                # a scope that limits no tokens does not count them
                counted = tokens if any(limit.tokens is not None for limit in limits) else 0
                in_class = priority if counter_scope.source_ip is None else None
                reservations.append(self._counters.reserve(counter_scope, limits, counted, now, request_id, in_class))
            admitted = True
        except CapacityExceeded as exceeded:
            seen = _seen_by(
                [usage for reservation in reservations for usage in reservation.usage] + list(exceeded.usage),
                priority.caller if priority else None,
            )
            dimension = CapacityDimension.SOURCE_IP if counter_scope and counter_scope.source_ip else None
            rate_limits = RateLimits(*tightest(seen), priority_class=priority.caller if priority else None)
            raise OverCapacity(connection.name, exceeded, rate_limits, tokens, now, dimension) from None
        finally:
            if not admitted:
                # Given back after the answer: a failed release (retried there) cannot turn a refusal into a 503.
                self._settle_after(afterwards, reservations, None)
        return reservations

    def _settle_after(
        self, afterwards: Afterwards, reservations: list[Reservation], actual_tokens: Callable[[], int] | None
    ) -> None:
        """Each reservation's reconcile with `actual_tokens()` (read when it runs), or its release when None,
        after the answer: retried while there is time (the store applies it once), then kept for later."""

        def tokens_of(reservation: Reservation) -> int | None:
            if actual_tokens is None:
                return None
            # a scope that counts no tokens is only settled
            return actual_tokens() if reservation.tokens else 0

        for reservation in reservations:

            def settle(reservation: Reservation = reservation) -> None:
                tokens = tokens_of(reservation)
                if tokens is None:
                    self._counters.release(reservation)
                else:
                    self._counters.reconcile(reservation, tokens, self._clock())

            def keep(reservation: Reservation = reservation) -> None:
                self._settlements.defer(DeferredSettlement(reservation, tokens_of(reservation)))

            what = "release" if actual_tokens is None else "reconcile"
            afterwards.add(
                what,
                settle,
                attempt_seconds=self._settle_attempt_seconds,
                give_up=keep,
                give_up_seconds=self._defer_seconds,
            )

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
class _Admitted:
    attempt: "_Attempt"
    # the model as the client names it: <connection>/<model>
    model: str
    reservations: list[Reservation]
    call: ProviderCall
    prompt_tokens: int
    reserved_tokens: int


@dataclass(frozen=True)
class _Outcome:
    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    refused_limit: RefusedLimit | None = None
    error_code: str | None = None
    stream_end: StreamEnd | None = None
    usage_estimated: bool = False


class _StreamTally:
    """What a stream produced so far, and how it ended: for the reconcile and CompletionRecorded."""

    def __init__(self, prompt_tokens_estimate: int):
        self._prompt_tokens_estimate = prompt_tokens_estimate
        self.characters = 0
        self.usage: Usage | None = None
        self.end: StreamEnd | None = None
        self.error_code: str | None = None

    def count(self, chunk: ChatCompletionChunk) -> None:
        for choice in chunk.choices:
            delta = choice.delta
            self.characters += len(delta.content or "") + len(delta.refusal or "")
            for call in delta.tool_calls or []:
                if call.function is not None:
                    self.characters += len(call.function.name or "") + len(call.function.arguments or "")

    @property
    def prompt_tokens(self) -> int:
        return self.usage.prompt_tokens if self.usage else self._prompt_tokens_estimate

    @property
    def completion_tokens(self) -> int:
        return self.usage.completion_tokens if self.usage else estimate_tokens_of(self.characters)

    @property
    def total_tokens(self) -> int:
        return self.usage.total_tokens if self.usage else self.prompt_tokens + self.completion_tokens


def _relay(
    upstream: ProviderStream, tally: _StreamTally, model: str, include_usage: bool
) -> Iterator[ChatCompletionChunk]:
    """The provider's chunks for the client, counted as they pass. A client that goes away closes this
    generator (GeneratorExit at its yield): the stream then ends as client-disconnected."""
    try:
        for chunk in upstream:
            if not chunk.choices and chunk.usage is not None:
                tally.usage = chunk.usage
                if include_usage:
                    yield chunk.model_copy(update={"model": model})
                continue
            tally.count(chunk)
            yield chunk.model_copy(update={"model": model, "usage": None})
        tally.end = "completed"
    except ProviderError as error:
        tally.end, tally.error_code = "failed", error.code
        raise
    except Exception:
        # the client hears of it as an internal error (vmx.http.openai_errors.event_stream)
        tally.end, tally.error_code = "failed", "internal_error"
        raise
    finally:
        if tally.end is None:
            tally.end = "client-disconnected"
        upstream.close()


@dataclass(frozen=True)
class _Attempt:
    """What CompletionRecorded says about one request, whatever its outcome."""

    connection: Connection
    model: str
    stream: bool
    started: datetime
    # None when the connection has no priority classes
    priority: Priority | None

    @property
    def priority_class(self) -> str | None:
        return self.priority.caller if self.priority else None

    @staticmethod
    def succeeded(usage: Usage) -> _Outcome:
        return _Outcome(200, usage.prompt_tokens, usage.completion_tokens)

    @staticmethod
    def streamed(tally: _StreamTally) -> _Outcome:
        # the 200 went out with the first piece; a failure after it is told by the error code and the end
        return _Outcome(
            200,
            tally.prompt_tokens,
            tally.completion_tokens,
            error_code=tally.error_code,
            stream_end=tally.end,
            usage_estimated=tally.usage is None,
        )

    @staticmethod
    def refused(refusal: OverCapacity) -> _Outcome:
        exceeded = refusal.exceeded
        limit = RefusedLimit(
            period=exceeded.period,
            kind=exceeded.limit_kind,
            limit=exceeded.limit,
            dimension=refusal.dimension,
            priority_class=exceeded.priority_class,
            share=exceeded.share,
        )
        return _Outcome(429, refused_limit=limit, error_code=refusal.code)

    @staticmethod
    def failed(status: int, error_code: str) -> _Outcome:
        return _Outcome(status, error_code=error_code)

    def recorded(self, outcome: _Outcome, now: datetime) -> CompletionRecorded:
        return CompletionRecorded(
            occurred_at=now,
            workspace_id=self.connection.workspace_id,
            environment_id=self.connection.environment_id,
            connection_id=self.connection.connection_id,
            connection_name=self.connection.name,
            provider=self.connection.provider,
            model=self.model,
            status=outcome.status,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            latency_ms=max(round((now - self.started).total_seconds() * 1000), 0),
            refused_by_capacity=outcome.refused_limit is not None,
            refused_limit=outcome.refused_limit,
            error_code=outcome.error_code,
            stream=self.stream,
            stream_end=outcome.stream_end,
            usage_estimated=outcome.usage_estimated,
            priority_class=self.priority_class,
        )


def _after(reservations: list[Reservation], actual_tokens: int, priority_class: str | None) -> RateLimits:
    """The windows as the reservations left them (as the caller's class sees them), with the tokens corrected
    to what was actually used."""
    usages = [
        dataclasses.replace(usage, tokens_used=usage.tokens_used + actual_tokens - reservation.tokens)
        if reservation.tokens
        else usage
        for reservation in reservations
        for usage in _seen_by(reservation.usage, priority_class)
    ]
    requests, tokens = tightest(usages)
    return RateLimits(requests, tokens, priority_class)


def _seen_by(usages: Iterable[WindowUsage], priority_class: str | None) -> list[WindowUsage]:
    return [usage.seen_by(priority_class) for usage in usages]


def _priority(connection: Connection, principal: Principal) -> Priority | None:
    """The class the request counts in: its key's, where the connection has that class, else the default."""
    prioritization = connection.prioritization
    if prioritization is None:
        return None
    caller = prioritization.class_of(principal.priority_class).name
    return Priority(tuple(prioritization.classes), caller)


def _check_allowed(connection: Connection, model_id: str) -> None:
    if connection.allowed_models is not None and model_id not in connection.allowed_models:
        allowed = ", ".join(connection.allowed_models)
        raise Forbidden(
            f"model '{model_id}' is not allowed on AI connection '{connection.name}'; allowed models: {allowed}",
            [ErrorDetail(field="model", message=f"allowed models: {allowed}")],
            code="model_not_allowed",
        )


def _answer_tokens(request: ChatCompletionRequest) -> int:
    limit = request.output_token_limit
    return limit if limit is not None else DEFAULT_COMPLETION_TOKENS
