"""A streamed completion through the use case: the chunks relayed as they come, and the bookkeeping after them."""

from collections.abc import Generator, Iterator

import pytest

from tests.capacity_fakes import InMemoryCapacityCounters
from tests.unit.builders import World
from tests.unit.test_completion_service import (
    IDLE_TIMEOUT_SECONDS,
    ScriptedProvider,
    ask,
    completion_service,
    connection,
    recorded,
    run_afterwards,
    used,
)
from vmx.afterwards import Afterwards
from vmx.completions.openai_models import ChatCompletionChunk, Usage
from vmx.completions.providers import ProviderCall, ProviderError, ProviderStream
from vmx.completions.streams import ChunkFrame
from vmx.deadline import Deadline
from vmx.events.models import RateLimitsObserved
from vmx.use_cases.completions import CompletionService, StreamOutcome
from vmx.use_cases.refusals import ProviderFailure

PROVIDER = ChunkFrame("chatcmpl-1", 1_700_000_000, "gpt-4o-2024-08-06")
# What the gateway estimates for the prompt "hello": 3 to prime the reply, 4 for the message, 2 for the text.
PROMPT_ESTIMATE = 9
MAX_TOKENS = 100
CAPACITY = [{"period": "minute", "requests": 5, "tokens": 10_000}]


class ScriptedStreams:
    """Opens streams that send `chunks`, then raise `failure` if one is set; or refuses to open with `refusal`.
    Records the calls, how many chunks the provider sent, and whether the stream was closed."""

    def __init__(self) -> None:
        self.calls: list[ProviderCall] = []
        self.chunks: list[ChatCompletionChunk] = []
        self.failure: ProviderError | None = None
        self.refusal: ProviderError | None = None
        self.headers: dict[str, str] = {}
        self.sent = 0
        self.closed = False

    def __call__(self, call: ProviderCall) -> ProviderStream:
        self.calls.append(call)
        if self.refusal is not None:
            raise self.refusal
        return ProviderStream(self._send(), dict(self.headers), self._close)

    def _send(self) -> Iterator[ChatCompletionChunk]:
        for chunk in self.chunks:
            self.sent += 1
            yield chunk
        if self.failure is not None:
            raise self.failure

    def _close(self) -> None:
        self.closed = True


@pytest.fixture
def counters() -> InMemoryCapacityCounters:
    return InMemoryCapacityCounters()


@pytest.fixture
def streams() -> ScriptedStreams:
    return ScriptedStreams()


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def gateway(
    world: World, counters: InMemoryCapacityCounters, provider: ScriptedProvider, streams: ScriptedStreams
) -> CompletionService:
    return completion_service(world, counters, provider, streams)


@pytest.fixture
def afterwards() -> Afterwards:
    return Afterwards()


def ask_stream(
    gateway: CompletionService,
    world: World,
    afterwards: Afterwards,
    include_usage: bool = False,
    deadline: Deadline | None = None,
) -> StreamOutcome:
    outcome = ask(
        gateway,
        world,
        afterwards,
        deadline=deadline,
        stream=True,
        stream_options={"include_usage": include_usage},
        max_tokens=MAX_TOKENS,
    )
    assert isinstance(outcome, StreamOutcome)
    return outcome


def test_a_stream_relays_the_chunks_in_order_under_the_gateways_model_name(
    gateway: CompletionService, world: World, streams: ScriptedStreams, afterwards: Afterwards
) -> None:
    connection(world)
    streams.chunks = [PROVIDER.role(), PROVIDER.text("Hel"), PROVIDER.text("lo"), PROVIDER.finish("stop")]

    outcome = ask_stream(gateway, world, afterwards)
    relayed = list(outcome.chunks)

    assert [(chunk.choices[0].delta.content, chunk.choices[0].finish_reason) for chunk in relayed] == [
        ("", None),
        ("Hel", None),
        ("lo", None),
        (None, "stop"),
    ]
    assert {(chunk.id, chunk.model) for chunk in relayed} == {("chatcmpl-1", "prod/gpt-4o")}


def test_a_stream_waits_the_idle_timeout_for_each_piece_within_the_deadline(
    gateway: CompletionService, world: World, streams: ScriptedStreams, afterwards: Afterwards
) -> None:
    connection(world)
    deadline = Deadline.after(60)

    ask_stream(gateway, world, afterwards, deadline=deadline)

    [call] = streams.calls
    assert (call.timeout_seconds, call.deadline) == (IDLE_TIMEOUT_SECONDS, deadline)
    assert call.model == "gpt-4o"
    assert call.secrets["apiKey"].get_secret_value() == "sk-1"


def test_nothing_is_reconciled_or_published_until_the_stream_has_gone_out(
    gateway: CompletionService,
    world: World,
    counters: InMemoryCapacityCounters,
    streams: ScriptedStreams,
    afterwards: Afterwards,
) -> None:
    connection_id = connection(world, capacity=CAPACITY)
    streams.chunks = [
        PROVIDER.text("Hi"),
        PROVIDER.usage(Usage(prompt_tokens=12, completion_tokens=7, total_tokens=19)),
    ]
    streams.headers = {"x-ratelimit-limit-requests": "500", "x-ratelimit-limit-tokens": "30000"}

    outcome = ask_stream(gateway, world, afterwards)
    list(outcome.chunks)

    assert used(counters, world, connection_id) == [(1, PROMPT_ESTIMATE + MAX_TOKENS)]
    assert recorded(world) == []
    assert world.events.of_type(RateLimitsObserved) == []

    run_afterwards(afterwards)

    assert used(counters, world, connection_id) == [(1, 19)]
    [event] = recorded(world)
    assert (event.status, event.stream, event.stream_end, event.usage_estimated) == (200, True, "completed", False)
    assert len(world.events.of_type(RateLimitsObserved)) == 1


@pytest.mark.parametrize("include_usage", [False, True])
def test_the_usage_chunk_reaches_the_client_only_when_asked_but_always_reconciles(
    gateway: CompletionService,
    world: World,
    counters: InMemoryCapacityCounters,
    streams: ScriptedStreams,
    afterwards: Afterwards,
    include_usage: bool,
) -> None:
    connection_id = connection(world, capacity=CAPACITY)
    usage = Usage(prompt_tokens=12, completion_tokens=7, total_tokens=19)
    streams.chunks = [PROVIDER.role(), PROVIDER.text("Hi"), PROVIDER.finish("stop"), PROVIDER.usage(usage)]

    relayed = list(ask_stream(gateway, world, afterwards, include_usage=include_usage).chunks)
    run_afterwards(afterwards)

    usage_chunks = [chunk for chunk in relayed if not chunk.choices]
    if include_usage:
        assert [(chunk.model, chunk.usage) for chunk in usage_chunks] == [("prod/gpt-4o", usage)]
        assert relayed[-1].choices == []
    else:
        assert usage_chunks == []
    assert len(relayed) == 3 + include_usage
    assert used(counters, world, connection_id) == [(1, 19)]
    [event] = recorded(world)
    assert (event.prompt_tokens, event.completion_tokens, event.usage_estimated) == (12, 7, False)


def test_a_client_that_leaves_closes_the_provider_stream_and_is_counted_by_estimate(
    gateway: CompletionService,
    world: World,
    counters: InMemoryCapacityCounters,
    streams: ScriptedStreams,
    afterwards: Afterwards,
) -> None:
    connection_id = connection(world, capacity=CAPACITY)
    usage = Usage(prompt_tokens=12, completion_tokens=70, total_tokens=82)
    streams.chunks = [PROVIDER.role(), PROVIDER.text("Hello, "), PROVIDER.text("world"), PROVIDER.usage(usage)]
    outcome = ask_stream(gateway, world, afterwards)

    # Given the client read two chunks
    relay = outcome.chunks
    assert isinstance(relay, Generator)
    assert [chunk.choices[0].delta.content for chunk in (next(relay), next(relay))] == ["", "Hello, "]
    # When it goes away
    relay.close()

    # Then the provider's stream is closed at once, and nothing more is read from it
    assert streams.closed
    assert streams.sent == 2
    run_afterwards(afterwards)
    # "Hello, " is 7 characters: 2 tokens
    estimate = PROMPT_ESTIMATE + 2
    assert used(counters, world, connection_id) == [(1, estimate)]
    [event] = recorded(world)
    assert (event.status, event.stream_end, event.usage_estimated) == (200, "client-disconnected", True)
    assert (event.prompt_tokens, event.completion_tokens, event.error_code) == (PROMPT_ESTIMATE, 2, None)


def test_a_provider_failure_mid_stream_reaches_the_client_and_is_recorded_as_such(
    gateway: CompletionService,
    world: World,
    counters: InMemoryCapacityCounters,
    streams: ScriptedStreams,
    afterwards: Afterwards,
) -> None:
    connection_id = connection(world, capacity=CAPACITY)
    streams.chunks = [
        PROVIDER.role(),
        PROVIDER.tool_call_start(0, "call_1", "get_weather", '{"city"'),
        PROVIDER.tool_call_arguments(0, ':"Oslo"}'),
    ]
    streams.failure = ProviderError(502, "provider_stream_failed", "the provider's stream broke off")
    outcome = ask_stream(gateway, world, afterwards)

    relayed: list[ChatCompletionChunk] = []
    with pytest.raises(ProviderError) as failed:
        for chunk in outcome.chunks:
            relayed.append(chunk)
    run_afterwards(afterwards)

    assert failed.value is streams.failure
    assert len(relayed) == 3
    assert streams.closed
    # get_weather, {"city" and :"Oslo"} are 11 + 7 + 8 = 26 characters: 7 tokens
    assert used(counters, world, connection_id) == [(1, PROMPT_ESTIMATE + 7)]
    [event] = recorded(world)
    assert (event.status, event.error_code, event.stream_end) == (200, "provider_stream_failed", "failed")
    assert (event.prompt_tokens, event.completion_tokens, event.usage_estimated) == (PROMPT_ESTIMATE, 7, True)


def test_a_provider_refusal_before_the_stream_counts_the_request_but_no_tokens(
    gateway: CompletionService,
    world: World,
    counters: InMemoryCapacityCounters,
    streams: ScriptedStreams,
    afterwards: Afterwards,
) -> None:
    connection_id = connection(world, capacity=CAPACITY)
    streams.refusal = ProviderError(429, "provider_rate_limited", "slow down", retry_after="3")

    with pytest.raises(ProviderFailure) as failed:
        ask_stream(gateway, world, afterwards)

    assert failed.value.error is streams.refusal
    assert failed.value.rate_limits.tokens is not None
    assert failed.value.rate_limits.tokens.tokens_used == 0
    assert recorded(world) == []

    run_afterwards(afterwards)

    assert used(counters, world, connection_id) == [(1, 0)]
    [event] = recorded(world)
    assert (event.status, event.error_code, event.stream, event.stream_end) == (
        429,
        "provider_rate_limited",
        True,
        None,
    )


def test_a_client_that_leaves_before_the_first_chunk_is_recorded_as_disconnected(
    gateway: CompletionService, world: World, streams: ScriptedStreams, afterwards: Afterwards
) -> None:
    connection(world, capacity=CAPACITY)
    streams.chunks = [PROVIDER.role(), PROVIDER.text("Hello")]
    outcome = ask_stream(gateway, world, afterwards)

    assert isinstance(outcome.chunks, Generator)
    outcome.chunks.close()
    run_afterwards(afterwards)

    assert (streams.closed, streams.sent) == (True, 0)
    [event] = recorded(world)
    assert (event.stream_end, event.usage_estimated, event.completion_tokens) == ("client-disconnected", True, 0)
