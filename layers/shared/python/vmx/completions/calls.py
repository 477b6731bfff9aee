"""What a provider call is: its input, its result, its failure, and the transports it travels on."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import urllib3
from pydantic import SecretStr, ValidationError

from vmx.clock import Clock, utc_now
from vmx.completions.openai_models import ChatCompletion, ChatCompletionRequest
from vmx.completions.provider_error import ProviderError as ProviderError
from vmx.deadline import Deadline
from vmx.providers.catalog import PROVIDERS, ProviderId
from vmx.providers.config import ConfigModel

ConfigT = TypeVar("ConfigT", bound=ConfigModel)


@dataclass(frozen=True)
class ProviderCall:
    provider: ProviderId
    # The provider's own model id, as the provider spells it.
    model: str
    # The connection's non-secret configuration, with wire names (baseUrl, region, iamRoleArn, ...).
    settings: Mapping[str, Any]
    # The connection's opened secrets, with wire names (apiKey, accessKeyId, ...).
    secrets: Mapping[str, SecretStr] = field(repr=False)
    request: ChatCompletionRequest
    # The longest wait for the provider: for a stream, the longest silence between two of its pieces.
    timeout_seconds: float
    # When the provider must have finished, whatever it still sends: the invocation's time left, less what
    # the bookkeeping after the answer needs. None: no limit beyond timeout_seconds.
    deadline: Deadline | None = None

    def wait_seconds(self) -> float:
        """How long the next wait on the provider may last."""
        return self.timeout_seconds if self.deadline is None else min(self.timeout_seconds, self.deadline.left())


@dataclass(frozen=True)
class ProviderResult:
    # With usage filled; `model` is the model the provider says answered (else the model called).
    completion: ChatCompletion
    # The provider's rate-limit headers, lowercased: x-ratelimit-*, anthropic-ratelimit-*, retry-after.
    rate_limit_headers: dict[str, str]


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: SecretStr
    secret_access_key: SecretStr
    session_token: SecretStr | None = None


@dataclass(frozen=True)
class BedrockAccess:
    """How a connection reaches Bedrock: a role to assume (preferred) or static keys."""

    region: str
    role_arn: str | None = None
    # sent with the role's AssumeRole when its trust policy requires one
    external_id: str | None = None
    keys: AwsCredentials | None = None


class BedrockClientFactory(Protocol):
    def __call__(self, access: BedrockAccess, timeout_seconds: float) -> Any:
        """A bedrock-runtime client with the access's credentials, which gives up after `timeout_seconds`.

        Raises ProviderError when the credentials cannot be had (an IAM role that cannot be assumed).
        """
        ...


@dataclass(frozen=True)
class Transports:
    """What adapters talk through, built once per warm function and passed in (tests pass loopbacks or stubs)."""

    http: urllib3.PoolManager
    bedrock_client: BedrockClientFactory
    clock: Clock = utc_now


def connection_config(call: ProviderCall, kind: type[ConfigT]) -> ConfigT:
    """The connection's configuration, validated again by its provider's model (it may predate a rule)."""
    return validated_config(call.provider, call.settings, call.secrets, kind)


def validated_config(
    provider: ProviderId, settings: Mapping[str, Any], secrets: Mapping[str, SecretStr], kind: type[ConfigT]
) -> ConfigT:
    """As `connection_config`, from the connection's settings and opened secrets."""
    try:
        # Secrets go in as SecretStr and stay so; the config models never echo their input in errors.
        return kind.model_validate({**settings, **secrets})
    except ValidationError:
        name = PROVIDERS[provider].name
        message = f"the AI connection's configuration is not valid for {name}; update the connection"
        raise ProviderError(502, "connection_misconfigured", message, reached=False) from None
