"""The cheapest call per provider (vmx.completions.probes) against loopback fakes: what a listing says, when it
cannot say every model, and how a refusal comes back."""

from typing import Any

import pytest
import urllib3
from pydantic import SecretStr

from tests.loopback_providers import LoopbackProvider, loopback_provider, model_list
from vmx.completions.calls import BedrockAccess, ProviderError, Transports
from vmx.completions.probes import Probe, ProbeFailed, probe
from vmx.providers.catalog import ProviderId


class NoBedrock:
    def model_ids(self, access: BedrockAccess, timeout_seconds: float) -> list[str]:
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


class UnreachableBedrock:
    def model_ids(self, access: BedrockAccess, timeout_seconds: float) -> list[str]:
        raise ProviderError(502, "provider_unreachable", "AWS Bedrock (Converse) could not be reached", reached=False)


def test_bedrock_unreachable_in_its_region_says_to_check_the_region() -> None:
    transports = Transports(http=urllib3.PoolManager(), bedrock_client=no_bedrock_client)
    keys = {"accessKeyId": SecretStr("AKIAEXAMPLE"), "secretAccessKey": SecretStr("secret")}

    with pytest.raises(ProbeFailed) as failed:
        probe(ProviderId.AWS_BEDROCK, {"region": "mx-central-1"}, keys, transports, UnreachableBedrock(), 2.0)

    assert failed.value.failure.message == (
        "AWS Bedrock (Converse) could not be reached in mx-central-1; check that Bedrock is offered in that region"
    )
