"""An OpenAI conversation in the shape Anthropic, Gemini and Bedrock share, and the completion built from an answer.

Those providers take the system text apart from the turns, want user and assistant turns that alternate
(consecutive messages of one role are merged into one turn), carry tool calls as structured arguments rather
than JSON text, and send tool results in the user's turn. Only text content is carried over: an image, audio
or file part is refused with a 400 rather than silently dropped.
"""

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from vmx.completions.calls import ProviderError
from vmx.completions.openai_models import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    CompletionTokensDetails,
    Content,
    DeveloperMessage,
    FinishReason,
    FunctionCall,
    PromptTokensDetails,
    ResponseMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
)


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    # The name of the tool that was called: Gemini matches results to calls by name.
    name: str
    content: str


Block = Text | ToolUse | ToolResult


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Conversation:
    system: tuple[str, ...]
    turns: tuple[Turn, ...]


def conversation_of(request: ChatCompletionRequest, provider: str) -> Conversation:
    """System and developer messages, wherever they are, become the system text, in order."""
    system: list[str] = []
    turns: list[Turn] = []
    tool_names: dict[str, str] = {}
    for index, message in enumerate(request.messages):
        where = f"messages[{index}]"
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(text for text in _texts(message.content, provider, where) if text.strip())
        elif isinstance(message, UserMessage):
            _add(turns, "user", [Text(text) for text in _texts(message.content, provider, where)])
        elif isinstance(message, AssistantMessage):
            blocks: list[Block] = [Text(text) for text in _texts(message.content, provider, where)]
            for number, call in enumerate(message.tool_calls or []):
                arguments = _arguments(call, provider, f"{where}.tool_calls[{number}]")
                blocks.append(ToolUse(call.id, call.function.name, arguments))
                tool_names[call.id] = call.function.name
            _add(turns, "assistant", blocks)
        elif isinstance(message, ToolMessage):
            if message.tool_call_id not in tool_names:
                raise ProviderError(
                    400,
                    "unknown_tool_call",
                    f"{where}.tool_call_id '{message.tool_call_id}' matches no tool call of an earlier assistant message",
                )
            content = "\n".join(_texts(message.content, provider, where))
            _add(turns, "user", [ToolResult(message.tool_call_id, tool_names[message.tool_call_id], content)])
    return Conversation(tuple(system), tuple(turns))


def _texts(content: Content | None, provider: str, where: str) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    texts = []
    for number, part in enumerate(content):
        if part.type != "text" or part.text is None:
            raise ProviderError(
                400,
                "unsupported_content",
                f"{where}.content[{number}]: {provider} connections take text content only, not '{part.type}' parts",
            )
        texts.append(part.text)
    return texts


def _arguments(call: ToolCall, provider: str, where: str) -> dict[str, Any]:
    # Some clients send "" for a function without parameters.
    if not call.function.arguments.strip():
        return {}
    try:
        arguments = json.loads(call.function.arguments)
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        message = f"{where}.function.arguments must be a JSON object for {provider}"
        raise ProviderError(400, "invalid_tool_arguments", message)
    return arguments


def _add(turns: list[Turn], role: Literal["user", "assistant"], blocks: list[Block]) -> None:
    # Blank text is refused by Anthropic and Bedrock, and says nothing to Gemini.
    kept = tuple(block for block in blocks if not isinstance(block, Text) or block.text.strip())
    if not kept:
        return
    if turns and turns[-1].role == role:
        turns[-1] = Turn(role, turns[-1].blocks + kept)
    else:
        turns.append(Turn(role, kept))


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_call(call_id: str, name: str, arguments: Any) -> ToolCall:
    return ToolCall(id=call_id, function=FunctionCall(name=name, arguments=json.dumps(arguments or {})))


def usage(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int | None = None, reasoning_tokens: int | None = None
) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        prompt_tokens_details=None if cached_tokens is None else PromptTokensDetails(cached_tokens=cached_tokens),
        completion_tokens_details=(
            None if reasoning_tokens is None else CompletionTokensDetails(reasoning_tokens=reasoning_tokens)
        ),
    )


def completion(
    *,
    completion_id: str,
    created: int,
    model: str,
    texts: list[str],
    tool_calls: list[ToolCall],
    finish_reason: FinishReason,
    token_usage: Usage,
) -> ChatCompletion:
    """One choice; its content is None when the answer is only tool calls, as OpenAI's is."""
    content = "".join(texts) if texts or not tool_calls else None
    message = ResponseMessage(content=content, tool_calls=tool_calls or None)
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=model,
        choices=[Choice(index=0, message=message, finish_reason=finish_reason)],
        usage=token_usage,
    )
