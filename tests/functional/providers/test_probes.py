"""The cheapest call per provider (vmx.completions.probes) against loopback fakes: what a listing says, when it
cannot say every model, and how a refusal comes back."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import urllib3
from pydantic import SecretStr

from tests.loopback_providers import LoopbackProvider, loopback_provider, model_list
from vmx.completions.aws_access import bedrock_client_factory
from vmx.completions.calls import AwsCredentials, BedrockAccess, ProviderError, Transports
from vmx.completions.probes import Probe, ProbeFailed, probe
from vmx.providers.catalog import ProviderId


class NoBedrock:
    def model_ids(self, access: BedrockAccess, provider: str, timeout_seconds: float) -> list[str]:
        raise AssertionError("only Bedrock connections list Bedrock's models")


def no_bedrock_client(access: BedrockAccess, timeout_seconds: float) -> Any:
    raise AssertionError("a probe makes no Bedrock runtime call")


def probed(provider: ProviderId, server: LoopbackProvider, api_key: str | None = None) -> Probe:
    transports = Transports(http=urllib3.PoolManager(), bedrock_client=no_bedrock_client)
    secrets = {"apiKey": SecretStr(api_key or server.api_key or "")}
    return probe(provider, {"baseUrl": server.base_url}, secrets, transports, NoBedrock(), 2.0)


def test_gemini_models_are_known_by_both_their_names() -> None:
    with loopback_provider("gemini") as server:
        listed = probed(ProviderId.GEMINI, server)

    assert listed.model_ids == frozenset({"models/gemini-2.5-flash", "gemini-2.5-flash"})
    assert server.requests[0].headers["x-goog-api-key"] == server.api_key


@pytest.mark.parametrize(
    ("kind", "provider", "more"),
    [("anthropic", ProviderId.ANTHROPIC, {"has_more": True}), ("gemini", ProviderId.GEMINI, {"nextPageToken": "p2"})],
)
def test_a_listing_with_more_pages_does_not_claim_to_name_every_model(
    kind: Any, provider: ProviderId, more: dict[str, Any]
) -> None:
    with loopback_provider(kind) as server:
        server.respond_with({**model_list(kind, ["one"]), **more})
        listed = probed(provider, server)

    assert listed.model_ids is None


def test_perplexity_is_asked_nothing_it_would_bill_and_its_refusals_tell_the_key() -> None:
    with loopback_provider("perplexity") as server:
        accepted = probed(ProviderId.PERPLEXITY, server)
        with pytest.raises(ProbeFailed) as refused:
            probed(ProviderId.PERPLEXITY, server, api_key="pplx-wrong")

    assert server.requests[0].body == {"model": "sonar", "messages": []}
    assert accepted.model_ids is None
    assert refused.value.failure.code == "provider_authentication_failed"
    assert refused.value.checked == accepted.checked


def test_a_listing_that_is_not_one_is_an_invalid_response() -> None:
    with loopback_provider("openai") as server:
        server.respond_with({"object": "list"})
        with pytest.raises(ProbeFailed) as failed:
            probed(ProviderId.OPENAI, server)

    assert (failed.value.failure.code, failed.value.failure.message) == (
        "provider_invalid_response",
        "OpenAI answered with a model list without `data`",
    )


def test_a_configuration_no_longer_valid_is_refused_before_any_call() -> None:
    with loopback_provider("openai") as server:
        transports = Transports(http=urllib3.PoolManager(), bedrock_client=no_bedrock_client)
        with pytest.raises(ProviderError) as invalid:
            probe(ProviderId.OPENAI, {"baseUrl": server.base_url}, {}, transports, NoBedrock(), 2.0)

    assert invalid.value.code == "connection_misconfigured"
    assert server.requests == []


def test_bedrock_unreachable_in_its_region_says_to_check_the_region() -> None:
    # nothing listens on port 9: as a region without a Bedrock endpoint, no connection is made
    catalog = bedrock_client_factory(sts=None, endpoint_url="http://127.0.0.1:9")
    keys = AwsCredentials(SecretStr("AKIAEXAMPLE"), SecretStr("bedrock-secret"))

    with pytest.raises(ProviderError) as failed:
        catalog.model_ids(BedrockAccess("mx-central-1", keys=keys), "AWS Bedrock (Converse)", 2.0)

    assert (failed.value.code, failed.value.message) == (
        "provider_unreachable",
        "AWS Bedrock (Converse) could not be reached in mx-central-1; check that Bedrock is offered in that region",
    )


def test_a_wrong_gemini_key_is_refused_credentials() -> None:
    with loopback_provider("gemini") as server, pytest.raises(ProbeFailed) as refused:
        probed(ProviderId.GEMINI, server, api_key="AIza-wrong")

    # Gemini says so with a 400 API_KEY_INVALID
    assert refused.value.failure.code == "provider_authentication_failed"


class RefusesEverything(BaseHTTPRequestHandler):
    """A server at a Perplexity connection's baseUrl that answers every request with the same 400."""

    def do_POST(self) -> None:
        body = json.dumps({"error": {"message": "this server refuses everything"}}).encode()
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_perplexity_refusal_that_is_not_about_the_messages_proves_nothing() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusesEverything)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    transports = Transports(http=urllib3.PoolManager(), bedrock_client=no_bedrock_client)
    settings = {"baseUrl": f"http://127.0.0.1:{server.server_address[1]}"}
    try:
        with pytest.raises(ProbeFailed) as unproven:
            probe(ProviderId.PERPLEXITY, settings, {"apiKey": SecretStr("pplx-1")}, transports, NoBedrock(), 2.0)
    finally:
        server.shutdown()
        server.server_close()

    assert (unproven.value.failure.code, unproven.value.failure.message) == (
        "provider_rejected_request",
        "Perplexity rejected the request (HTTP 400): this server refuses everything",
    )
