"""The providers a connection can use and what each one's configuration looks like."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, get_args

from pydantic import SecretStr

from vmx.errors import ErrorDetail, InvalidInput
from vmx.providers.config import ApiKeyConfig, BedrockConfig, ConfigModel


class ProviderId(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    GROQ = "groq"
    PERPLEXITY = "perplexity"
    AWS_BEDROCK = "aws-bedrock"
    AWS_BEDROCK_INVOKE = "aws-bedrock-invoke"


# Ids people reach for that name a provider we support under another id.
_RENAMED = {"google": ProviderId.GEMINI, "bedrock": ProviderId.AWS_BEDROCK}


@dataclass(frozen=True)
class Provider:
    id: ProviderId
    name: str
    description: str
    config_model: type[ConfigModel]

    @property
    def secret_fields(self) -> frozenset[str]:
        """Wire names of the fields that hold secrets."""
        return frozenset(
            field.alias or name
            for name, field in self.config_model.model_fields.items()
            if _holds_secret(field.annotation)
        )

    @property
    def credential_bound_fields(self) -> frozenset[str]:
        """Fields that decide where the secrets are sent: changing one requires resending the secrets."""
        return frozenset({"baseUrl"}) if "base_url" in self.config_model.model_fields else frozenset()

    def config_schema(self) -> dict[str, Any]:
        return self.config_model.model_json_schema(by_alias=True)


def _holds_secret(annotation: Any) -> bool:
    """True for SecretStr, however wrapped in Optional or Annotated."""
    if annotation is SecretStr:
        return True
    return any(_holds_secret(argument) for argument in get_args(annotation))


PROVIDERS: dict[ProviderId, Provider] = {
    provider.id: provider
    for provider in (
        Provider(ProviderId.OPENAI, "OpenAI", "OpenAI's API, or any OpenAI-compatible endpoint.", ApiKeyConfig),
        Provider(ProviderId.ANTHROPIC, "Anthropic", "Anthropic's Messages API.", ApiKeyConfig),
        Provider(ProviderId.GEMINI, "Google Gemini", "Google's Gemini API (generateContent).", ApiKeyConfig),
        Provider(ProviderId.GROQ, "Groq", "Groq's OpenAI-compatible API.", ApiKeyConfig),
        Provider(ProviderId.PERPLEXITY, "Perplexity", "Perplexity's OpenAI-compatible API.", ApiKeyConfig),
        Provider(
            ProviderId.AWS_BEDROCK,
            "AWS Bedrock (Converse)",
            "Every Bedrock foundation model through the unified Converse API.",
            BedrockConfig,
        ),
        Provider(
            ProviderId.AWS_BEDROCK_INVOKE,
            "AWS Bedrock-Invoke (Anthropic on AWS)",
            "Claude on Bedrock through InvokeModel, keeping the full Anthropic Messages API.",
            BedrockConfig,
        ),
    )
}


def provider_by_id(value: str) -> Provider:
    try:
        return PROVIDERS[ProviderId(value)]
    except ValueError:
        pass
    known = ", ".join(PROVIDERS)
    if value.lower() in _RENAMED:
        message = f"unknown provider '{value}': the provider id is '{_RENAMED[value.lower()]}'"
    else:
        message = f"unknown provider '{value}'; expected one of: {known}"
    raise InvalidInput(message, [ErrorDetail(field="provider", message=message, type="unknown_provider")])
