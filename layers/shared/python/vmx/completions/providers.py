"""The gateway's one entry to the providers: `call_provider(call, transports)`, and the models each one offers."""

from collections.abc import Callable

from vmx.completions import anthropic, bedrock, gemini, openai_compatible
from vmx.completions.aws_access import bedrock_client_factory
from vmx.completions.calls import (
    AwsCredentials,
    BedrockAccess,
    BedrockClientFactory,
    ProviderCall,
    ProviderError,
    ProviderResult,
    Transports,
)
from vmx.completions.streams import ProviderStream
from vmx.providers.catalog import ProviderId

__all__ = [
    "DEFAULT_MODELS",
    "AwsCredentials",
    "BedrockAccess",
    "BedrockClientFactory",
    "ProviderCall",
    "ProviderError",
    "ProviderResult",
    "ProviderStream",
    "Transports",
    "bedrock_client_factory",
    "call_provider",
    "open_stream",
]

_ADAPTERS: dict[ProviderId, Callable[[ProviderCall, Transports], ProviderResult]] = {
    ProviderId.OPENAI: openai_compatible.complete,
    ProviderId.GROQ: openai_compatible.complete,
    ProviderId.PERPLEXITY: openai_compatible.complete,
    ProviderId.ANTHROPIC: anthropic.complete,
    ProviderId.GEMINI: gemini.complete,
    ProviderId.AWS_BEDROCK: bedrock.converse,
    ProviderId.AWS_BEDROCK_INVOKE: bedrock.invoke,
}

_STREAM_ADAPTERS: dict[ProviderId, Callable[[ProviderCall, Transports], ProviderStream]] = {
    ProviderId.OPENAI: openai_compatible.stream,
    ProviderId.GROQ: openai_compatible.stream,
    ProviderId.PERPLEXITY: openai_compatible.stream,
    ProviderId.ANTHROPIC: anthropic.stream,
    ProviderId.GEMINI: gemini.stream,
    ProviderId.AWS_BEDROCK: bedrock.converse_stream,
    ProviderId.AWS_BEDROCK_INVOKE: bedrock.invoke_stream,
}

# What GET /models lists for a connection without allowedModels: widely available text models, by each
# provider's own ids. A starting point, not a limit: any model id the provider knows can be called.
DEFAULT_MODELS: dict[ProviderId, list[str]] = {
    ProviderId.OPENAI: ["gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "o4-mini"],
    ProviderId.ANTHROPIC: ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"],
    ProviderId.GEMINI: ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"],
    ProviderId.GROQ: ["llama-3.3-70b-versatile", "llama-3.1-8b-instant", "openai/gpt-oss-120b"],
    ProviderId.PERPLEXITY: ["sonar", "sonar-pro", "sonar-reasoning-pro"],
    ProviderId.AWS_BEDROCK: ["amazon.nova-pro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-micro-v1:0"],
    ProviderId.AWS_BEDROCK_INVOKE: [
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
    ],
}


def call_provider(call: ProviderCall, transports: Transports) -> ProviderResult:
    """Sends the request to the connection's provider and answers in OpenAI's shape.

    Raises ProviderError when the provider refuses, fails, times out or cannot be reached, and when the
    request cannot be said in the provider's terms (a non-text part for a translated provider, say).
    """
    return _ADAPTERS[call.provider](call, transports)


def open_stream(call: ProviderCall, transports: Transports) -> ProviderStream:
    """Opens the provider's own streaming API; see `vmx.completions.streams` for what the stream yields.

    Raises ProviderError as `call_provider` does when the provider refuses before answering.
    """
    return _STREAM_ADAPTERS[call.provider](call, transports)
