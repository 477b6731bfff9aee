"""A provider's answer as it comes: OpenAI `chat.completion.chunk`s, whatever the provider's own stream format.

Each adapter's `stream(call, transports)` opens the provider's streaming API and returns a `ProviderStream`
once the provider has accepted the request (an HTTP error status raises ProviderError then, before any piece,
so the client still gets a proper status). Iterating it yields the chunks as the provider sends them; the
provider's usage arrives as a chunk without choices. A failure after that point (an error event, a dropped
connection, a silence longer than the idle timeout) raises ProviderError from the iteration.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vmx.completions.openai_models import (
    ChatCompletionChunk,
    ChunkChoice,
    ChunkDelta,
    FinishReason,
    FunctionCallDelta,
    ToolCallDelta,
    Usage,
)


@dataclass
class ChunkFrame:
    """What every chunk of one answer repeats: its id, creation time and model."""

    completion_id: str
    created: int
    model: str
    system_fingerprint: str | None = None

    def delta(self, finish_reason: FinishReason | None = None, **delta: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.completion_id,
            created=self.created,
            model=self.model,
            system_fingerprint=self.system_fingerprint,
            choices=[ChunkChoice(delta=ChunkDelta(**delta), finish_reason=finish_reason)],
        )

    def role(self) -> ChatCompletionChunk:
        """The first chunk of every answer, as OpenAI sends it."""
        return self.delta(role="assistant", content="")

    def text(self, text: str) -> ChatCompletionChunk:
        return self.delta(content=text)

    def tool_call_start(self, index: int, call_id: str, name: str, arguments: str = "") -> ChatCompletionChunk:
        call = ToolCallDelta(
            index=index, id=call_id, type="function", function=FunctionCallDelta(name=name, arguments=arguments)
        )
        return self.delta(tool_calls=[call])

    def tool_call_arguments(self, index: int, arguments: str) -> ChatCompletionChunk:
        return self.delta(tool_calls=[ToolCallDelta(index=index, function=FunctionCallDelta(arguments=arguments))])

    def finish(self, finish_reason: FinishReason) -> ChatCompletionChunk:
        return self.delta(finish_reason)

    def usage(self, usage: Usage) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.completion_id,
            created=self.created,
            model=self.model,
            system_fingerprint=self.system_fingerprint,
            choices=[],
            usage=usage,
        )


class ProviderStream:
    """The chunks of one answer, the provider's rate-limit headers (known when it accepted the request), and
    `close()`, which stops reading and lets the provider's connection go (a client that went away)."""

    def __init__(
        self,
        chunks: Iterator[ChatCompletionChunk],
        rate_limit_headers: dict[str, str],
        close: Callable[[], None],
    ):
        self._chunks = chunks
        self.rate_limit_headers = rate_limit_headers
        self._close = close

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self._chunks

    def close(self) -> None:
        self._close()
