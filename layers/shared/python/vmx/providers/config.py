"""Provider-specific connection configuration, validated strictly.

Secret fields are `SecretStr`: they are never printed, and `catalog.secret_fields` finds them by type.
"""

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.alias_generators import to_camel

# Every provider key and AWS credential is printable ASCII without spaces; a secret with anything else (most
# often the newline a paste carries) could only fail as a header, and the failure could quote it.
_SECRET_CHARACTERS = re.compile(r"[\x21-\x7e]+")


def _usable_secret(value: SecretStr) -> SecretStr:
    if not _SECRET_CHARACTERS.fullmatch(value.get_secret_value()):
        raise ValueError(
            "must be printable ASCII without spaces, tabs or line breaks (check for a newline copied with it)"
        )
    return value


Secret = Annotated[SecretStr, Field(min_length=1, max_length=4096), AfterValidator(_usable_secret)]

_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _valid_host_name(host: str) -> bool:
    try:
        ascii_host = host.encode("idna").decode()
    except UnicodeError:
        return False
    return len(ascii_host) <= 253 and all(_HOST_LABEL.match(label) for label in ascii_host.lower().split("."))


def _check_base_url(value: str) -> str:
    # urlsplit drops tabs and newlines silently; a URL holding any is refused, not stored
    if any(character.isspace() or not character.isprintable() for character in value):
        raise ValueError("must not contain whitespace or control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not carry a query, a fragment or user info")
    # which addresses it may reach is the connection service's to say (vmx.providers.addresses)
    address = _ip(parts.hostname)
    if address is None and not _valid_host_name(parts.hostname):
        raise ValueError("has an invalid host name")
    # The API key travels to this URL, so plain http is only for a proxy on this machine.
    loopback = parts.hostname == "localhost" or (address is not None and address.is_loopback)
    if parts.scheme == "http" and not loopback:
        raise ValueError("must use https (plain http is allowed only for loopback hosts)")
    return value.rstrip("/")


BaseUrl = Annotated[str, Field(max_length=2048), AfterValidator(_check_base_url)]


class ConfigModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        hide_input_in_errors=True,
        str_strip_whitespace=False,
    )


class ApiKeyConfig(ConfigModel):
    api_key: Secret = Field(description="The provider's API key.")
    base_url: BaseUrl | None = Field(
        default=None,
        description="Optional base URL of a compatible endpoint or proxy; the provider's own by default.",
    )


class PerformanceConfig(ConfigModel):
    latency: Literal["standard", "optimized"]


class GuardrailConfig(ConfigModel):
    guardrail_identifier: str = Field(
        pattern=r"^([a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+)$",
        max_length=2048,
        description="Guardrail id or full ARN.",
    )
    guardrail_version: str = Field(pattern=r"^([1-9][0-9]{0,7}|DRAFT)$", description="A version number or DRAFT.")
    trace: Literal["enabled", "disabled", "enabled_full"] = "enabled"


class BedrockConfig(ConfigModel):
    region: str = Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]{1,2}$", description="AWS region.")
    iam_role_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$",
        description="Role the gateway assumes to call Bedrock (preferred).",
    )
    external_id: str | None = Field(
        default=None,
        min_length=2,
        max_length=1224,
        pattern=r"^[\w+=,.@:/-]+$",
        description="External ID the role's trust policy requires (sts:ExternalId), so that no other party "
        "can have the gateway act in your account. Not a secret.",
    )
    access_key_id: Secret | None = Field(default=None, description="Static access key id (legacy).")
    secret_access_key: Secret | None = Field(default=None, description="Static secret access key (legacy).")
    session_token: Secret | None = Field(default=None, description="Session token for temporary keys.")
    performance_config: PerformanceConfig | None = None
    guardrail_config: GuardrailConfig | None = None

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> "BedrockConfig":
        has_keys = self.access_key_id is not None or self.secret_access_key is not None
        if self.iam_role_arn is not None and has_keys:
            raise ValueError("give either iamRoleArn or accessKeyId + secretAccessKey, not both")
        if self.iam_role_arn is None and not has_keys:
            raise ValueError("give either iamRoleArn or accessKeyId + secretAccessKey")
        if has_keys and (self.access_key_id is None or self.secret_access_key is None):
            raise ValueError("accessKeyId and secretAccessKey go together")
        if self.session_token is not None and not has_keys:
            raise ValueError("sessionToken needs accessKeyId and secretAccessKey")
        if self.external_id is not None and self.iam_role_arn is None:
            raise ValueError("externalId goes with iamRoleArn: it is sent when assuming the role")
        return self


ProviderConfig = ApiKeyConfig | BedrockConfig
