"""Gemini's streamGenerateContent: its GenerateContentResponses become OpenAI chunks; `stream()` over an in-memory
HTTP pool that answers as Gemini's SSE endpoint does."""

import io
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3
from pydantic import SecretStr

from tests.unit.completions.samples import chat_request
from vmx.completions.calls import ProviderCall, ProviderError, Transports
from vmx.completions.failures import Redactor
from vmx.completions.gemini import chunks_from_responses, generate_content_body, stream
from vmx.completions.openai_models import ChatCompletionChunk
from vmx.completions.streams import ChunkFrame
from vmx.deadline import Deadline
from vmx.providers.catalog import ProviderId

PROVIDER = "Google Gemini"
API_KEY = "AIza-GEMINI-CANARY-KEY"
USAGE = {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 17}


def piece(parts: list[dict[str, Any]], finish_reason: str | None = None, **fields: Any) -> dict[str, Any]:
    """One GenerateContentResponse of a stream, as Gemini sends it."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
    return {
        "candidates": [candidate],
        "usageMetadata": USAGE,
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-7",
        **fields,
    }


def translate(responses: Iterable[Any], deadline: Deadline | None = None) -> list[ChatCompletionChunk]:
    frame = ChunkFrame("chatcmpl-ours", 1_700_000_000, "gemini-2.5-flash")
    return list(chunks_from_responses(responses, frame, PROVIDER, Redactor([SecretStr(API_KEY)]), deadline))


def deltas(chunks: list[ChatCompletionChunk]) -> list[dict[str, Any]]:
    """Each chunk's one choice as the client reads it: the delta's fields, and the finish reason when there is one."""
    seen = []
    for chunk in chunks:
        if not chunk.choices:
            continue
        (choice,) = chunk.choices
        seen.append(
            {
                **choice.delta.model_dump(exclude_none=True),
                **({"finish_reason": choice.finish_reason} if choice.finish_reason else {}),
            }
        )
    return seen


def test_text_comes_in_pieces_under_geminis_response_id_and_model_version() -> None:
    chunks = translate([piece([{"text": "Bonjour"}]), piece([{"text": " Paris"}]), piece([{"text": "!"}], "STOP")])

    assert deltas(chunks) == [
        {"role": "assistant", "content": ""},
        {"content": "Bonjour"},
        {"content": " Paris"},
        {"content": "!"},
        {"finish_reason": "stop"},
    ]
    assert {(chunk.id, chunk.model, chunk.created) for chunk in chunks} == {
        ("resp-7", "gemini-2.5-flash-001", 1_700_000_000)
    }
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 17


def test_thought_summaries_are_left_out() -> None:
    chunks = translate(
        [
            piece([{"text": "Considering the question", "thought": True}]),
            piece([{"text": "More thinking", "thought": True}, {"text": "Yes."}]),
            piece([{"text": ""}], "STOP"),
        ]
    )

    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "Yes."}, {"finish_reason": "stop"}]


def test_function_calls_become_whole_tool_call_deltas_and_gemini_stop_means_tool_calls() -> None:
    chunks = translate(
        [
            piece([{"text": "Checking."}]),
            piece([{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]),
            piece([{"functionCall": {"name": "get_time", "id": "fc-2"}}], "STOP"),
        ]
    )

    seen = deltas(chunks)
    assert seen[1] == {"content": "Checking."}
    (first,) = seen[2]["tool_calls"]
    generated = first.pop("id")
    assert re.fullmatch(r"call_[0-9a-f]{24}", generated)
    assert first == {
        "index": 0,
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    assert seen[3] == {
        "tool_calls": [
            {"index": 1, "id": "fc-2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
        ]
    }
    assert seen[4:] == [{"finish_reason": "tool_calls"}]


@pytest.mark.parametrize(
    ("gemini_reason", "finish_reason"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter")],
)
def test_the_finish_reason_is_mapped_as_for_a_whole_answer(gemini_reason: str, finish_reason: str) -> None:
    chunks = translate([piece([{"text": "Once upon"}]), piece([], gemini_reason)])

    assert deltas(chunks)[-1] == {"finish_reason": finish_reason}


def test_a_blocked_prompt_ends_at_once_with_content_filter_and_its_usage() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-blocked",
    }

    chunks = translate([blocked])

    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"finish_reason": "content_filter"}]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == {
        "prompt_tokens": 9,
        "completion_tokens": 0,
        "total_tokens": 9,
    }


def test_usage_is_the_last_reported_with_thoughts_and_tool_prompts_counted() -> None:
    growing = {"promptTokenCount": 40, "candidatesTokenCount": 1, "totalTokenCount": 41}
    final = {
        "promptTokenCount": 40,
        "toolUsePromptTokenCount": 6,
        "cachedContentTokenCount": 32,
        "candidatesTokenCount": 11,
        "thoughtsTokenCount": 120,
        "totalTokenCount": 177,
    }

    chunks = translate(
        [piece([{"text": "A"}], usageMetadata=growing), piece([{"text": "B"}], "STOP", usageMetadata=final)]
    )

    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].usage is not None
    assert usage_chunks[0].usage.model_dump(exclude_none=True) == {
        "prompt_tokens": 46,
        "completion_tokens": 131,
        "total_tokens": 177,
        "prompt_tokens_details": {"cached_tokens": 32},
        "completion_tokens_details": {"reasoning_tokens": 120},
    }


def test_a_stream_without_usage_metadata_has_no_usage_chunk() -> None:
    chunks = translate([{"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP"}]}])

    assert deltas(chunks)[-1] == {"finish_reason": "stop"}
    assert all(chunk.usage is None for chunk in chunks)


def test_an_error_object_mid_stream_raises_with_the_message_redacted() -> None:
    error = {"error": {"code": 500, "message": f"Internal error for key {API_KEY}", "status": "INTERNAL"}}
    chunks = chunks_from_responses(
        iter([piece([{"text": "Half an"}]), error, piece([{"text": "never"}], "STOP")]),
        ChunkFrame("chatcmpl-ours", 1, "gemini-2.5-flash"),
        PROVIDER,
        Redactor([SecretStr(API_KEY)]),
    )

    assert [chunk.choices[0].delta.content for chunk in [next(chunks), next(chunks)]] == ["", "Half an"]
    with pytest.raises(ProviderError) as raised:
        next(chunks)

    assert (raised.value.status, raised.value.code) == (502, "provider_error")
    assert raised.value.message == "Google Gemini failed during the answer: Internal error for key [redacted]"


@pytest.mark.parametrize(
    "responses",
    [[], [piece([{"text": "Half an"}]), piece([{"text": " answer"}])]],
    ids=["nothing", "no finish reason"],
)
def test_a_stream_that_ends_before_a_finish_reason_was_interrupted(responses: list[Any]) -> None:
    with pytest.raises(ProviderError) as raised:
        translate(responses)

    assert (raised.value.status, raised.value.code) == (502, "provider_stream_interrupted")


def test_a_response_in_an_unknown_shape_is_an_invalid_response() -> None:
    with pytest.raises(ProviderError) as raised:
        translate([{"candidates": "all of them"}])

    assert (raised.value.status, raised.value.code) == (502, "provider_invalid_response")


def test_a_piece_after_the_calls_deadline_raises_a_timeout() -> None:
    with pytest.raises(ProviderError) as raised:
        translate([piece([{"text": "Too"}]), piece([], "STOP")], deadline=Deadline(0.0))

    assert (raised.value.status, raised.value.code) == (504, "provider_timeout")


class GeminiPool(urllib3.PoolManager):
    """Answers every request with one canned reply, as Gemini's endpoint would, and keeps what it was sent."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None):
        super().__init__()
        self.reply = (status, body, headers or {})
        self.sent: list[dict[str, Any]] = []

    def request(  # type: ignore[override]
        self, method: str, url: str, body: bytes, headers: dict[str, str], **options: Any
    ) -> urllib3.BaseHTTPResponse:
        self.sent.append({"method": method, "url": url, "body": json.loads(body), "headers": headers})
        status, content, reply_headers = self.reply
        return urllib3.HTTPResponse(
            body=io.BytesIO(content), status=status, headers=reply_headers, preload_content=False
        )


def gemini_call(pool: GeminiPool) -> tuple[ProviderCall, Transports]:
    request = chat_request([{"role": "user", "content": "Weather in Oslo?"}])
    call = ProviderCall(ProviderId.GEMINI, "models/gemini-2.5-flash", {}, {"apiKey": SecretStr(API_KEY)}, request, 5.0)
    return call, Transports(
        http=pool, bedrock_client=lambda access, timeout: None, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_stream_posts_the_translated_body_to_stream_generate_content_and_reads_its_events() -> None:
    events = [piece([{"text": "Cold"}]), piece([{"text": "."}], "STOP")]
    sse = "".join(f"data: {json.dumps(event)}\r\n\r\n" for event in events).encode()
    pool = GeminiPool(200, sse, {"content-type": "text/event-stream", "x-ratelimit-remaining-requests": "99"})
    call, transports = gemini_call(pool)

    answer = stream(call, transports)
    chunks = list(answer)

    (sent,) = pool.sent
    assert sent["url"] == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert sent["headers"]["x-goog-api-key"] == API_KEY
    assert sent["body"] == generate_content_body(call.request, PROVIDER)
    assert answer.rate_limit_headers == {"x-ratelimit-remaining-requests": "99"}
    assert deltas(chunks) == [
        {"role": "assistant", "content": ""},
        {"content": "Cold"},
        {"content": "."},
        {"finish_reason": "stop"},
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 12


def test_stream_reads_geminis_refusals_as_complete_does() -> None:
    refused_key = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    rate_limited = {
        "error": {
            "code": 429,
            "message": "Quota exceeded",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "16.2s"}],
        }
    }

    with pytest.raises(ProviderError) as key_refused:
        stream(*gemini_call(GeminiPool(400, json.dumps(refused_key).encode())))
    with pytest.raises(ProviderError) as throttled:
        stream(*gemini_call(GeminiPool(429, json.dumps(rate_limited).encode())))

    assert (key_refused.value.status, key_refused.value.code) == (502, "provider_authentication_failed")
    assert (throttled.value.status, throttled.value.code, throttled.value.retry_after) == (
        429,
        "provider_rate_limited",
        "17",
    )
