"""A canary API key goes out with every provider call, and providers that echo it back (in a 401, a 400, a
429) must not get it past the adapters: not into a ProviderError, a result, or any log line."""

import logging
import uuid
from typing import Any

import pytest

from tests.functional.providers.conftest import HTTP_PROVIDERS, call_through
from tests.loopback_providers import Kind, loopback_provider
from tests.unit.completions.samples import chat_request
from vmx.completions.providers import ProviderError, Transports
from vmx.providers.catalog import ProviderId

CANARY = "sk-CANARY-" + uuid.uuid4().hex


def error_body(kind: Kind, message: str) -> Any:
    if kind == "anthropic":
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return {"error": {"message": message, "type": "invalid_request_error", "code": 400}}


def everything_said(error: ProviderError) -> str:
    return " ".join([str(error), repr(error), error.message, repr(error.args), repr(error.rate_limit_headers)])


@pytest.mark.parametrize(("kind", "provider", "model"), HTTP_PROVIDERS)
def test_the_canary_key_never_leaves_an_adapter(
    kind: Kind, provider: ProviderId, model: str, transports: Transports, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    said = []
    with loopback_provider(kind, api_key=CANARY) as server:
        result = call_through(server, provider, model, chat_request(), transports)
        said.append(result.completion.model_dump_json() + repr(result))
        for status in (400, 429, 500):
            server.respond_with(error_body(kind, f"key {CANARY} was used"), status=status, headers={"x-echo": CANARY})
        for _ in range(3):
            with pytest.raises(ProviderError) as raised:
                call_through(server, provider, model, chat_request(), transports)
            said.append(everything_said(raised.value))
        # the server echoes the key it was given in its refusal (OpenAI's kinds) or refuses it (the others)
        with pytest.raises(ProviderError) as refused:
            call_through(server, provider, model, chat_request(), transports, api_key=CANARY + "-rotated")
        said.append(everything_said(refused.value))

    assert all(server.requests), "the canary was really sent"
    assert "[redacted]" in said[1]
    for text in [*said, caplog.text]:
        assert CANARY not in text
