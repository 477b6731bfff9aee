"""OpenAI's chat completions wire shapes: the request we accept, the completion we answer, and its stream form.

Permissive where OpenAI is: unknown fields are kept (on the request, its messages and the completion), so an
SDK that adds a parameter keeps working and an OpenAI-compatible provider receives it; the fields the
translations read are typed.
"""

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class _OpenAiShape(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_OpenAiShape):
    """One part of a message's content: `{"type": "text", "text": ...}`, or an image, audio or file part."""

    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_has_text(self) -> "ContentPart":
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs 'text'")
        return self


Content = str | list[ContentPart]


class FunctionCall(_OpenAiShape):
    name: str
    # A JSON text, exactly as OpenAI sends it; the model may produce invalid JSON.
    arguments: str


class ToolCall(_OpenAiShape):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_OpenAiShape):
    role: Literal["system"]
    content: Content
    name: str | None = None


class DeveloperMessage(_OpenAiShape):
    role: Literal["developer"]
    content: Content
    name: str | None = None


class UserMessage(_OpenAiShape):
    role: Literal["user"]
    content: Content
    name: str | None = None


class AssistantMessage(_OpenAiShape):
    role: Literal["assistant"]
    content: Content | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    name: str | None = None


class ToolMessage(_OpenAiShape):
    role: Literal["tool"]
    content: Content
    tool_call_id: str


Message = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


class FunctionDefinition(_OpenAiShape):
    name: str = Field(min_length=1)
    description: str | None = None
    # A JSON Schema object; absent means the function takes no arguments.
    parameters: dict[str, Any] | None = None


class ToolDefinition(_OpenAiShape):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_OpenAiShape):
    name: str


class NamedToolChoice(_OpenAiShape):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_OpenAiShape):
    include_usage: bool | None = None


class ChatCompletionRequest(_OpenAiShape):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    n: int | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only n=1 is supported: send one request per choice")
        return value

    @property
    def output_token_limit(self) -> int | None:
        """max_completion_tokens, or the older max_tokens."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_stream_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage is True


class ResponseMessage(_OpenAiShape):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class Choice(_OpenAiShape):
    index: int = 0
    message: ResponseMessage
    finish_reason: FinishReason
    logprobs: Any = None


class PromptTokensDetails(_OpenAiShape):
    cached_tokens: int | None = None


class CompletionTokensDetails(_OpenAiShape):
    reasoning_tokens: int | None = None


class Usage(_OpenAiShape):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ChatCompletion(_OpenAiShape):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class FunctionCallDelta(_OpenAiShape):
    name: str | None = None
    # A piece of the arguments' JSON text: the pieces of one call, joined, are the whole arguments.
    arguments: str | None = None


class ToolCallDelta(_OpenAiShape):
    # Which tool call of the answer this piece belongs to: its first piece carries the id, type and name.
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None


class ChunkDelta(_OpenAiShape):
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(_OpenAiShape):
    index: int = 0
    delta: ChunkDelta
    finish_reason: FinishReason | None = None
    logprobs: Any = None


class ChatCompletionChunk(_OpenAiShape):
    """One piece of a streamed answer; the usage comes in a chunk of its own, with no choices."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


SSE_DONE = b"data: [DONE]\n\n"


def sse_event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def sse_chunk(chunk: ChatCompletionChunk, include_usage: bool) -> bytes:
    """One `text/event-stream` event, as OpenAI writes it: every choice says its finish_reason and logprobs
    (null until they apply), and when the client asked for usage every chunk but the last carries "usage": null."""
    payload = chunk.model_dump(mode="json", exclude_none=True)
    payload["system_fingerprint"] = chunk.system_fingerprint
    for choice in payload["choices"]:
        choice.setdefault("logprobs", None)
        choice.setdefault("finish_reason", None)
    if include_usage:
        payload.setdefault("usage", None)
    return sse_event(payload)


# estimate_prompt_tokens: about four characters of English per token, plus OpenAI's documented overheads
# (about 4 tokens framing each message, 3 priming the reply). An image costs by its size, not by the length
# of its base64, so each non-text part counts as a flat 1,000 tokens: generous for small images, low for
# large high-detail ones. Capacity reserves with this estimate and reconciles with the provider's usage.
_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4
_REPLY_PRIMING_TOKENS = 3
_TOKENS_PER_NON_TEXT_PART = 1000


def estimate_prompt_tokens(request: ChatCompletionRequest) -> int:
    """A cheap upper-ish estimate of the prompt's tokens, without a tokenizer (see the constants above)."""
    characters = 0
    tokens = _REPLY_PRIMING_TOKENS
    for message in request.messages:
        tokens += _TOKENS_PER_MESSAGE
        text_parts, other_parts = _split_content(message.content)
        characters += sum(len(text) for text in text_parts)
        tokens += other_parts * _TOKENS_PER_NON_TEXT_PART
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls or []:
                characters += len(call.id) + len(call.function.name) + len(call.function.arguments)
        if isinstance(message, ToolMessage):
            characters += len(message.tool_call_id)
    if request.tools:
        characters += len(json.dumps([tool.model_dump(exclude_none=True) for tool in request.tools]))
    return tokens + math.ceil(characters / _CHARS_PER_TOKEN)


def estimate_completion_tokens(message: ResponseMessage) -> int:
    """For a provider that reports no usage: the answer's characters, at the same four per token."""
    characters = len(message.content or "")
    for call in message.tool_calls or []:
        characters += len(call.function.name) + len(call.function.arguments)
    return estimate_tokens_of(characters)


def estimate_tokens_of(characters: int) -> int:
    """Tokens for this many characters of generated text, at the same four per token."""
    return math.ceil(characters / _CHARS_PER_TOKEN)


def _split_content(content: Content | None) -> tuple[list[str], int]:
    """The texts of a message's content, and how many parts are not text."""
    if content is None:
        return [], 0
    if isinstance(content, str):
        return [content], 0
    texts = [part.text for part in content if part.type == "text" and part.text is not None]
    return texts, len(content) - len(texts)
