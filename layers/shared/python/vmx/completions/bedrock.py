"""AWS Bedrock: any model through Converse, and Claude through InvokeModel with Anthropic's Messages body."""

import json
from collections.abc import Iterable, Iterator
from typing import Any

from botocore import exceptions as botocore_errors
from botocore.eventstream import ParserError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic.alias_generators import to_camel
from urllib3 import exceptions as urllib3_errors

from vmx.completions.anthropic import chunks_from_events, completion_from_message, messages_body
from vmx.completions.calls import (
    AwsCredentials,
    BedrockAccess,
    ProviderCall,
    ProviderError,
    ProviderResult,
    Transports,
    connection_config,
)
from vmx.completions.conversation import (
    Text,
    ToolUse,
    Turn,
    completion,
    conversation_of,
    new_completion_id,
    tool_call,
    usage,
)
from vmx.completions.failures import (
    Redactor,
    failure_for_status,
    interrupted,
    invalid_response,
    not_connected,
    out_of_time,
    timed_out,
    unreachable,
    unsendable_credentials,
    went_silent,
)
from vmx.completions.openai_models import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    FinishReason,
    ToolCall,
    Usage,
)
from vmx.completions.streams import ChunkFrame, ProviderStream
from vmx.providers.catalog import PROVIDERS
from vmx.providers.config import BedrockConfig

ANTHROPIC_VERSION = "bedrock-2023-05-31"

FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

# Error codes that mean the credentials themselves were refused (the HTTP status alone says 400 or 403).
_CREDENTIALS_REFUSED = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "InvalidClientTokenId"}
)
_THROTTLED = frozenset({"ThrottlingException", "ModelNotReadyException", "ServiceQuotaExceededException"})
# The HTTP status of each exception a response stream can end with, as bedrock-runtime's service model gives it.
_STREAM_EXCEPTION_STATUSES = {
    "ValidationException": 400,
    "ThrottlingException": 429,
    "ModelTimeoutException": 408,
    "ModelStreamErrorException": 424,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}


def converse(call: ProviderCall, transports: Transports) -> ProviderResult:
    config = connection_config(call, BedrockConfig)
    provider = PROVIDERS[call.provider].name
    params = converse_params(call.model, call.request, config, provider)
    client = transports.bedrock_client(access_of(config), call.timeout_seconds)
    try:
        response = client.converse(**params)
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc, provider, call) from exc
    except ValueError:
        raise unsendable_credentials(provider) from None
    created = int(transports.clock().timestamp())
    return ProviderResult(completion_from_converse(response, call.model, created, provider), _limits(response))


def invoke(call: ProviderCall, transports: Transports) -> ProviderResult:
    config = connection_config(call, BedrockConfig)
    provider = PROVIDERS[call.provider].name
    params = invoke_params(call.model, call.request, config, provider)
    client = transports.bedrock_client(access_of(config), call.timeout_seconds)
    try:
        response = client.invoke_model(**params)
        raw = response["body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc, provider, call) from exc
    except ValueError:
        raise unsendable_credentials(provider) from None
    try:
        body = json.loads(raw)
    except ValueError:
        raise invalid_response(provider, "a body that is not JSON") from None
    created = int(transports.clock().timestamp())
    return ProviderResult(completion_from_message(body, call.model, created, provider), _limits(response))


def access_of(config: BedrockConfig) -> BedrockAccess:
    if config.iam_role_arn is not None:
        return BedrockAccess(config.region, role_arn=config.iam_role_arn, external_id=config.external_id)
    assert config.access_key_id is not None and config.secret_access_key is not None  # BedrockConfig requires them
    return BedrockAccess(
        config.region, keys=AwsCredentials(config.access_key_id, config.secret_access_key, config.session_token)
    )


def converse_params(model: str, request: ChatCompletionRequest, config: BedrockConfig, provider: str) -> dict[str, Any]:
    conversation = conversation_of(request, provider)
    params: dict[str, Any] = {"modelId": model, "messages": [_message(turn) for turn in conversation.turns]}
    if conversation.system:
        params["system"] = [{"text": text} for text in conversation.system]
    inference: dict[str, Any] = {}
    if request.output_token_limit is not None:
        inference["maxTokens"] = request.output_token_limit
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop_sequences:
        inference["stopSequences"] = request.stop_sequences
    if inference:
        params["inferenceConfig"] = inference
    tool_config = _tool_config(request, conversation.turns)
    if tool_config is not None:
        params["toolConfig"] = tool_config
    if config.performance_config is not None:
        params["performanceConfig"] = {"latency": config.performance_config.latency}
    if config.guardrail_config is not None:
        guardrail = config.guardrail_config
        params["guardrailConfig"] = {
            "guardrailIdentifier": guardrail.guardrail_identifier,
            "guardrailVersion": guardrail.guardrail_version,
            "trace": guardrail.trace,
        }
    return params


def invoke_params(model: str, request: ChatCompletionRequest, config: BedrockConfig, provider: str) -> dict[str, Any]:
    body = {"anthropic_version": ANTHROPIC_VERSION, **messages_body(request, provider)}
    params: dict[str, Any] = {
        "modelId": model,
        "body": json.dumps(body).encode(),
        "contentType": "application/json",
        "accept": "application/json",
    }
    if config.performance_config is not None:
        params["performanceConfigLatency"] = config.performance_config.latency
    if config.guardrail_config is not None:
        guardrail = config.guardrail_config
        params["guardrailIdentifier"] = guardrail.guardrail_identifier
        params["guardrailVersion"] = guardrail.guardrail_version
        # InvokeModel spells the trace setting in capitals (an HTTP header), Converse in lower case.
        params["trace"] = guardrail.trace.upper()
    return params


def _message(turn: Turn) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in turn.blocks:
        if isinstance(block, Text):
            content.append({"text": block.text})
        elif isinstance(block, ToolUse):
            content.append({"toolUse": {"toolUseId": block.id, "name": block.name, "input": block.arguments}})
        else:
            result = [{"text": block.content}] if block.content.strip() else []
            content.append({"toolResult": {"toolUseId": block.tool_use_id, "content": result}})
    return {"role": turn.role, "content": content}


def _tool_config(request: ChatCompletionRequest, turns: tuple[Turn, ...]) -> dict[str, Any] | None:
    if not request.tools:
        return None
    # Converse has no "none" choice: the tools are left out, unless the conversation already holds tool blocks,
    # which Converse refuses without a toolConfig; the model may then still call a tool.
    if request.tool_choice == "none" and not any(
        not isinstance(block, Text) for turn in turns for block in turn.blocks
    ):
        return None
    tools = [
        {
            "toolSpec": {
                "name": tool.function.name,
                **({"description": tool.function.description} if tool.function.description else {}),
                "inputSchema": {"json": tool.function.parameters or {"type": "object", "properties": {}}},
            }
        }
        for tool in request.tools
    ]
    tool_config: dict[str, Any] = {"tools": tools}
    choice = request.tool_choice
    if choice == "auto":
        tool_config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        tool_config["toolChoice"] = {"any": {}}
    elif choice is not None and choice != "none":
        tool_config["toolChoice"] = {"tool": {"name": choice.function.name}}
    return tool_config


class _ConverseShape(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class _ToolUse(_ConverseShape):
    tool_use_id: str
    name: str
    input: Any = None


class _Block(_ConverseShape):
    text: str | None = None
    tool_use: _ToolUse | None = None


class _Message(_ConverseShape):
    content: list[_Block] = []


class _Output(_ConverseShape):
    message: _Message | None = None


class _TokenUsage(_ConverseShape):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None


class _ConverseResponse(_ConverseShape):
    output: _Output
    stop_reason: str | None = None
    usage: _TokenUsage = _TokenUsage()


def completion_from_converse(response: Any, model: str, created: int, provider: str) -> ChatCompletion:
    """Reasoning blocks are left out: OpenAI's chat completion has no place for them."""
    try:
        parsed = _ConverseResponse.model_validate(response)
    except ValidationError:
        raise invalid_response(provider, "a Converse response in an unexpected shape") from None
    blocks = parsed.output.message.content if parsed.output.message is not None else []
    texts = [block.text for block in blocks if block.text is not None]
    tool_calls: list[ToolCall] = [
        tool_call(block.tool_use.tool_use_id, block.tool_use.name, block.tool_use.input)
        for block in blocks
        if block.tool_use is not None
    ]
    tokens = parsed.usage
    cache_read = tokens.cache_read_input_tokens or 0
    prompt_tokens = tokens.input_tokens + cache_read + (tokens.cache_write_input_tokens or 0)
    return completion(
        completion_id=new_completion_id(),
        created=created,
        model=model,
        texts=texts,
        tool_calls=tool_calls,
        finish_reason=FINISH_REASONS.get(parsed.stop_reason or "", "stop"),
        token_usage=usage(prompt_tokens, tokens.output_tokens, cached_tokens=cache_read or None),
    )


def _limits(response: Any) -> dict[str, str]:
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return {name: value for name, value in headers.items() if name.lower() == "retry-after"}


def _failure(exc: ClientError | BotoCoreError, provider: str, call: ProviderCall) -> ProviderError:
    return sdk_failure(exc, provider, call.timeout_seconds, call.secrets.values())


def sdk_failure(
    exc: ClientError | BotoCoreError, provider: str, timeout_seconds: float, secrets: Iterable[SecretStr]
) -> ProviderError:
    """The one place Bedrock's SDK errors (of its runtime or its control plane) become ProviderErrors."""
    # neither a connect timeout nor a refused connection sent the request: its capacity goes back
    if isinstance(exc, botocore_errors.ConnectTimeoutError):
        return not_connected(provider, timeout_seconds)
    if isinstance(exc, botocore_errors.EndpointConnectionError):
        return not_connected(provider)
    if isinstance(exc, botocore_errors.ReadTimeoutError):
        return timed_out(provider, timeout_seconds)
    if isinstance(exc, botocore_errors.ConnectionError | botocore_errors.HTTPClientError):
        return unreachable(provider)
    if isinstance(exc, BotoCoreError):
        return ProviderError(502, "provider_error", f"{provider} could not be called ({type(exc).__name__})")
    error = exc.response.get("Error", {})
    metadata = exc.response.get("ResponseMetadata", {})
    # An exception event in a stream spells its code in lowerCamel (throttlingException) and has no HTTP status.
    code = _capitalized(str(error.get("Code", "")))
    status = int(metadata.get("HTTPStatusCode") or _STREAM_EXCEPTION_STATUSES.get(code, 500))
    if code in _CREDENTIALS_REFUSED:
        status = 401
    elif code in _THROTTLED:
        status = 429
    elif code == "ModelTimeoutException":
        status = 408
    elif code in ("ModelErrorException", "ModelStreamErrorException"):
        # HTTP 424, but the model failed, not the request.
        status = 502
    message = error.get("Message")
    detail = Redactor(secrets).clean(str(message)) if message else None
    headers = {name.lower(): value for name, value in metadata.get("HTTPHeaders", {}).items()}
    retry_after = headers.get("retry-after")
    return failure_for_status(
        provider, status, detail, retry_after, {"retry-after": retry_after} if retry_after else {}
    )


def _capitalized(code: str) -> str:
    return code[:1].upper() + code[1:]


def converse_stream(call: ProviderCall, transports: Transports) -> ProviderStream:
    config = connection_config(call, BedrockConfig)
    provider = PROVIDERS[call.provider].name
    params = converse_params(call.model, call.request, config, provider)
    response = _open_stream(call, transports, config, "converse_stream", params)
    events = response["stream"]
    frame = ChunkFrame(new_completion_id(), int(transports.clock().timestamp()), call.model)
    chunks = _converse_chunks(_stream_events(events, provider, call), frame, provider)
    return ProviderStream(chunks, _limits(response), events.close)


def _open_stream(
    call: ProviderCall, transports: Transports, config: BedrockConfig, operation: str, params: dict[str, Any]
) -> Any:
    """Calls one of bedrock-runtime's streaming operations; its response holds the EventStream."""
    if call.wait_seconds() <= 0:
        raise out_of_time(PROVIDERS[call.provider].name)
    # The client's read timeout is the idle timeout: it applies to each read of the stream.
    client = transports.bedrock_client(access_of(config), call.timeout_seconds)
    try:
        return getattr(client, operation)(**params)
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc, PROVIDERS[call.provider].name, call) from exc
    except ValueError:
        raise unsendable_credentials(PROVIDERS[call.provider].name) from None


def _stream_events(events: Iterable[Any], provider: str, call: ProviderCall) -> Iterator[Any]:
    """The EventStream's events, with its failures as ProviderErrors and the call's deadline held between them."""
    iterator = iter(events)
    while True:
        try:
            event = next(iterator)
        except StopIteration:
            return
        except (ClientError, BotoCoreError) as exc:
            # An error event (throttlingException, modelStreamErrorException, ...) arrives as an EventStreamError.
            raise _failure(exc, provider, call) from exc
        except urllib3_errors.ReadTimeoutError as exc:
            raise went_silent(provider, call.timeout_seconds) from exc
        except urllib3_errors.HTTPError as exc:
            raise interrupted(provider) from exc
        except ParserError as exc:
            raise invalid_response(provider, "a stream event it could not decode") from exc
        if call.deadline is not None and call.deadline.passed:
            raise out_of_time(provider)
        yield event


class _ConverseToolStart(_ConverseShape):
    tool_use_id: str
    name: str


class _ConverseBlockStart(_ConverseShape):
    tool_use: _ConverseToolStart | None = None


class _ConverseBlockStartEvent(_ConverseShape):
    start: _ConverseBlockStart
    content_block_index: int


class _ConverseToolDelta(_ConverseShape):
    # A piece of the tool's input as JSON text.
    input: str = ""


class _ConverseDelta(_ConverseShape):
    text: str | None = None
    tool_use: _ConverseToolDelta | None = None


class _ConverseBlockDeltaEvent(_ConverseShape):
    delta: _ConverseDelta
    content_block_index: int


class _ConverseBlockStopEvent(_ConverseShape):
    content_block_index: int


class _ConverseMessageStopEvent(_ConverseShape):
    stop_reason: str | None = None


class _ConverseMetadataEvent(_ConverseShape):
    usage: _TokenUsage | None = None


class _ConverseEvent(_ConverseShape):
    """One ConverseStream event; messageStart, reasoning and citation deltas say nothing a chat completion holds."""

    content_block_start: _ConverseBlockStartEvent | None = None
    content_block_delta: _ConverseBlockDeltaEvent | None = None
    content_block_stop: _ConverseBlockStopEvent | None = None
    message_stop: _ConverseMessageStopEvent | None = None
    metadata: _ConverseMetadataEvent | None = None


def _converse_chunks(events: Iterable[Any], frame: ChunkFrame, provider: str) -> Iterator[ChatCompletionChunk]:
    """The chunks of a ConverseStream answer. Its usage comes in the metadata event after messageStop, so the
    usage chunk waits for the end of the stream; a stream that ends before messageStop was interrupted."""
    yield frame.role()
    # By content block index: the tool call's index among this answer's tool calls.
    tool_calls: dict[int, int] = {}
    without_input: set[int] = set()
    stopped = False
    reported: _TokenUsage | None = None
    for raw in events:
        try:
            event = _ConverseEvent.model_validate(raw)
        except ValidationError:
            raise invalid_response(provider, "a ConverseStream event in an unexpected shape") from None
        if event.content_block_start is not None and event.content_block_start.start.tool_use is not None:
            block, tool = event.content_block_start.content_block_index, event.content_block_start.start.tool_use
            tool_calls[block] = len(tool_calls)
            without_input.add(block)
            yield frame.tool_call_start(tool_calls[block], tool.tool_use_id, tool.name)
        elif event.content_block_delta is not None:
            block, delta = event.content_block_delta.content_block_index, event.content_block_delta.delta
            if delta.text:
                yield frame.text(delta.text)
            elif delta.tool_use is not None and delta.tool_use.input:
                if block not in tool_calls:
                    raise invalid_response(provider, "tool input for a tool use it had not started")
                without_input.discard(block)
                yield frame.tool_call_arguments(tool_calls[block], delta.tool_use.input)
        elif event.content_block_stop is not None and event.content_block_stop.content_block_index in without_input:
            # A tool without parameters may get no input at all: its arguments are an empty object, as in Converse.
            block = event.content_block_stop.content_block_index
            without_input.discard(block)
            yield frame.tool_call_arguments(tool_calls[block], "{}")
        elif event.message_stop is not None and not stopped:
            stopped = True
            yield frame.finish(FINISH_REASONS.get(event.message_stop.stop_reason or "", "stop"))
        elif event.metadata is not None:
            reported = event.metadata.usage or reported
    if not stopped:
        raise interrupted(provider)
    if reported is not None:
        yield frame.usage(_converse_usage(reported))


def _converse_usage(tokens: _TokenUsage) -> Usage:
    # Counted as completion_from_converse counts it: cache reads and writes are prompt tokens too.
    cache_read = tokens.cache_read_input_tokens or 0
    prompt_tokens = tokens.input_tokens + cache_read + (tokens.cache_write_input_tokens or 0)
    return usage(prompt_tokens, tokens.output_tokens, cached_tokens=cache_read or None)


def invoke_stream(call: ProviderCall, transports: Transports) -> ProviderStream:
    """InvokeModelWithResponseStream: Anthropic's stream events, each one the bytes of an event-stream `chunk`."""
    config = connection_config(call, BedrockConfig)
    provider = PROVIDERS[call.provider].name
    params = invoke_params(call.model, call.request, config, provider)
    response = _open_stream(call, transports, config, "invoke_model_with_response_stream", params)
    body = response["body"]
    frame = ChunkFrame(new_completion_id(), int(transports.clock().timestamp()), call.model)
    events = _anthropic_events(_stream_events(body, provider, call), provider)
    chunks = chunks_from_events(events, frame, provider, Redactor(call.secrets.values()), call.deadline)
    return ProviderStream(chunks, _limits(response), body.close)


def _anthropic_events(events: Iterable[Any], provider: str) -> Iterator[Any]:
    for event in events:
        # `chunk` is the stream's one kind of event; its exceptions arrive as EventStreamErrors.
        if "chunk" not in event:
            continue
        try:
            yield json.loads(event["chunk"]["bytes"])
        except (KeyError, TypeError, ValueError):
            raise invalid_response(provider, "a stream chunk that is not JSON") from None
