"""The cheapest call each provider offers that shows a connection's credentials and configuration work.

A model list where the provider has one: OpenAI's and Groq's `GET /models`, Anthropic's `GET /v1/models`, Gemini's
`GET /v1beta/models`, and Bedrock's foundation models in the connection's region (`ListFoundationModels`, with the
connection's role or keys). Perplexity lists none: it is sent a chat completion without messages, which it must
refuse before any model runs, so that costs nothing; its 400 about the messages says the key was accepted, a 401
that it was not.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from vmx.completions import anthropic, gemini, openai_compatible
from vmx.completions.bedrock import access_of
from vmx.completions.calls import BedrockAccess, ProviderError, Transports, validated_config
from vmx.completions.failures import Redactor, invalid_response, provider_message
from vmx.completions.http_json import HttpReply, get_json, post_json
from vmx.providers.catalog import PROVIDERS, ProviderId
from vmx.providers.config import ApiKeyConfig, BedrockConfig

# Anthropic's and Gemini's largest pages: one page holds every model they offer.
_PAGE_SIZE = 1000
# A model Perplexity offers to every key, named in the empty request it refuses.
_PERPLEXITY_MODEL = "sonar"


@dataclass(frozen=True)
class Probe:
    # What was called, in words, without a secret: "GET https://api.openai.com/v1/models with the API key".
    checked: str
    # The models the provider says the credentials may call; None when it does not say them all.
    model_ids: frozenset[str] | None


class ProbeFailed(Exception):
    """The provider refused or failed (`failure`, a ProviderError), or could not be reached, at what was `checked`."""

    def __init__(self, checked: str, failure: ProviderError):
        super().__init__(failure.message)
        self.checked = checked
        self.failure = failure


class BedrockModelCatalog(Protocol):
    def model_ids(self, access: BedrockAccess, provider: str, timeout_seconds: float) -> list[str]:
        """The foundation models Bedrock offers in the access's region, read with its role's or keys' credentials;
        `provider` is the connection's provider as its messages name it.

        Raises ProviderError as the Bedrock calls do, and with code `role_not_assumable` when the role cannot be
        assumed.
        """
        ...


def probe(
    provider: ProviderId,
    settings: Mapping[str, Any],
    secrets: Mapping[str, SecretStr],
    transports: Transports,
    bedrock_models: BedrockModelCatalog,
    timeout_seconds: float,
) -> Probe:
    """Raises ProbeFailed when the provider refuses or fails, or cannot be reached in `timeout_seconds`, and
    ProviderError (connection_misconfigured) when the configuration is no longer valid for its provider."""
    if provider in (ProviderId.AWS_BEDROCK, ProviderId.AWS_BEDROCK_INVOKE):
        access = access_of(validated_config(provider, settings, secrets, BedrockConfig))
        who = f"the IAM role {access.role_arn}" if access.role_arn else "the connection's access keys"
        checked = f"Bedrock's foundation models in {access.region} (ListFoundationModels), listed with {who}"

        name = PROVIDERS[provider].name
        return _run(checked, lambda: frozenset(bedrock_models.model_ids(access, name, timeout_seconds)))
    name = PROVIDERS[provider].name
    config = validated_config(provider, settings, secrets, ApiKeyConfig)
    redactor = Redactor(secrets.values())
    http = transports.http
    if provider is ProviderId.PERPLEXITY:
        url = f"{config.base_url or openai_compatible.DEFAULT_BASE_URLS[provider]}/chat/completions"
        headers = openai_compatible.auth_headers(config)
        empty = {"model": _PERPLEXITY_MODEL, "messages": []}
        checked = f"POST {url} with the API key and no messages, which is refused unbilled (Perplexity lists no models)"
        return _run(
            checked,
            lambda: _refused_as_empty(post_json(http, name, url, empty, headers, timeout_seconds), redactor),
        )
    if provider is ProviderId.ANTHROPIC:
        url = f"{config.base_url or anthropic.DEFAULT_BASE_URL}/v1/models"
        headers = anthropic.auth_headers(config)

        def anthropic_models() -> frozenset[str] | None:
            reply = _listed(get_json(http, name, f"{url}?limit={_PAGE_SIZE}", headers, timeout_seconds), redactor)
            return None if reply.body.get("has_more") is True else _ids(reply, "data", "id")

        return _run(f"GET {url} with the API key", anthropic_models)
    if provider is ProviderId.GEMINI:
        url = f"{config.base_url or gemini.DEFAULT_BASE_URL}/v1beta/models"
        headers = gemini.auth_headers(config)

        def gemini_models() -> frozenset[str] | None:
            reply = get_json(http, name, f"{url}?pageSize={_PAGE_SIZE}", headers, timeout_seconds)
            if not reply.ok:
                # Gemini's own reading: it refuses a wrong key with a 400 that says so
                raise gemini.failure(reply, name, redactor)
            ids = _ids(reply, "models", "name")
            # Gemini names its models "models/gemini-2.5-flash"; connections may name them either way
            return None if reply.body.get("nextPageToken") else ids | {model.removeprefix("models/") for model in ids}

        return _run(f"GET {url} with the API key", gemini_models)
    url = f"{config.base_url or openai_compatible.DEFAULT_BASE_URLS[provider]}/models"
    headers = openai_compatible.auth_headers(config)
    return _run(
        f"GET {url} with the API key",
        lambda: _ids(_listed(get_json(http, name, url, headers, timeout_seconds), redactor), "data", "id"),
    )


def _run(checked: str, call: Callable[[], frozenset[str] | None]) -> Probe:
    try:
        return Probe(checked, call())
    except ProviderError as failure:
        raise ProbeFailed(checked, failure) from failure


def _refused_as_empty(reply: HttpReply, redactor: Redactor) -> None:
    """Perplexity checks the key before the body (a wrong key is a 401 whatever the body), so its refusal of the
    missing messages means the key was accepted: nothing ran, nothing is billed. A refusal that is not about the
    messages (another server at the baseUrl, this gateway's own loop refusal) proves nothing."""
    if reply.ok:
        return
    said = (provider_message(reply.body) or "").lower()
    if reply.status not in (400, 422) or "message" not in said:
        raise reply.failure(redactor)


def _listed(reply: HttpReply, redactor: Redactor) -> HttpReply:
    if not reply.ok:
        raise reply.failure(redactor)
    return reply


def _ids(reply: HttpReply, list_field: str, id_field: str) -> frozenset[str]:
    entries = reply.body.get(list_field)
    if not isinstance(entries, list):
        raise invalid_response(reply.provider, f"a model list without `{list_field}`")
    return frozenset(
        entry[id_field] for entry in entries if isinstance(entry, dict) and isinstance(entry.get(id_field), str)
    )
