"""Provider calls over real HTTP to loopback fakes, and to Bedrock through botocore's Stubber."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3
from pydantic import SecretStr

from tests.loopback_providers import Kind, LoopbackProvider
from vmx.completions.openai_models import ChatCompletionRequest
from vmx.completions.providers import BedrockAccess, ProviderCall, ProviderResult, Transports, call_provider
from vmx.providers.catalog import ProviderId

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HTTP_PROVIDERS: list[tuple[Kind, ProviderId, str]] = [
    ("openai", ProviderId.OPENAI, "gpt-4o-mini"),
    ("groq", ProviderId.GROQ, "llama-3.3-70b-versatile"),
    ("perplexity", ProviderId.PERPLEXITY, "sonar"),
    ("anthropic", ProviderId.ANTHROPIC, "claude-sonnet-4-5"),
    ("gemini", ProviderId.GEMINI, "gemini-2.5-flash"),
]


def no_bedrock(access: BedrockAccess, timeout_seconds: float) -> Any:
    raise AssertionError("this test calls no Bedrock model")


@pytest.fixture(scope="module")
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager()
    yield pool
    pool.clear()


@pytest.fixture
def transports(http: urllib3.PoolManager) -> Transports:
    return Transports(http=http, bedrock_client=no_bedrock, clock=lambda: NOW)


def call_through(
    server: LoopbackProvider,
    provider: ProviderId,
    model: str,
    request: ChatCompletionRequest,
    transports: Transports,
    api_key: str | None = None,
    timeout_seconds: float = 2.0,
) -> ProviderResult:
    secrets = {"apiKey": SecretStr(api_key or server.api_key or "")}
    call = ProviderCall(provider, model, {"baseUrl": server.base_url}, secrets, request, timeout_seconds)
    return call_provider(call, transports)
