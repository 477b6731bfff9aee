"""Each function's settings: one validated object, read from the environment once, when first needed."""

from collections.abc import Mapping
from typing import Literal, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator

# An origin as browsers send it: lowercase scheme and host, an optional port, no path and no trailing slash.
BROWSER_ORIGIN_PATTERN = r"^https?://([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$"


# What a completion keeps of its invocation's time for the work after its answer (the reconcile and the events,
# each bounded by its client's timeouts and retries), so the function never times out after the provider answered.
BOOKKEEPING_SECONDS = 15.0


class _Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    aws_region: str = Field(validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        return cls.model_validate(dict(environ))


class AuthorizerSettings(_Settings):
    tenancy_table_name: str = Field(validation_alias="TENANCY_TABLE_NAME", min_length=3)


class ConsoleOriginSettings(BaseModel):
    """For the functions behind API routes: the one browser origin whose pages may read their responses."""

    console_origin: str | None = Field(default=None, validation_alias="CONSOLE_ORIGIN", pattern=BROWSER_ORIGIN_PATTERN)


class EventSettings(BaseModel):
    """Where a function that publishes events sends them: the bus, and the outbox for what the bus will not take."""

    aws_region: str = Field(validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    event_bus_name: str = Field(validation_alias="EVENT_BUS_NAME", min_length=1)
    event_outbox_queue_url: str = Field(validation_alias="EVENT_OUTBOX_QUEUE_URL", min_length=1)


class TenancySettings(_Settings, ConsoleOriginSettings, EventSettings):
    tenancy_table_name: str = Field(validation_alias="TENANCY_TABLE_NAME", min_length=3)
    connections_table_name: str = Field(validation_alias="CONNECTIONS_TABLE_NAME", min_length=3)


class CipherSettings(BaseModel):
    credentials_cipher: Literal["kms", "sodium"] = Field(validation_alias="CREDENTIALS_CIPHER")
    credentials_kms_key_id: str | None = Field(default=None, validation_alias="CREDENTIALS_KMS_KEY_ID")
    credentials_sodium_key: SecretStr | None = Field(default=None, validation_alias="CREDENTIALS_SODIUM_KEY")

    @model_validator(mode="after")
    def _key_for_cipher(self) -> Self:
        if self.credentials_cipher == "kms" and not self.credentials_kms_key_id:
            raise ValueError("CREDENTIALS_KMS_KEY_ID is required when CREDENTIALS_CIPHER=kms")
        if self.credentials_cipher == "sodium" and self.credentials_sodium_key is None:
            raise ValueError("CREDENTIALS_SODIUM_KEY is required when CREDENTIALS_CIPHER=sodium")
        return self


class BaseUrlSettings(BaseModel):
    """Where a connection's baseUrl may point (vmx.providers.addresses)."""

    # a proxy or fake provider on this machine: for the local stack and tests only, never in AWS
    allow_loopback_base_urls: bool = Field(default=False, validation_alias="ALLOW_LOOPBACK_BASE_URLS")
    # the gateway's own API, as host or host:port, comma-separated: no connection may point there
    own_api_hosts: str = Field(default="", validation_alias="OWN_API_HOSTS", max_length=4096)

    @property
    def own_hosts(self) -> frozenset[str]:
        return frozenset(host.strip().lower() for host in self.own_api_hosts.split(",") if host.strip())


class ConnectionsSettings(TenancySettings, CipherSettings, BaseUrlSettings):
    capacity_table_name: str = Field(validation_alias="CAPACITY_TABLE_NAME", min_length=3)
    usage_table_name: str = Field(validation_alias="USAGE_TABLE_NAME", min_length=3)


class CompletionsSettings(_Settings, CipherSettings, ConsoleOriginSettings, BaseUrlSettings, EventSettings):
    connections_table_name: str = Field(validation_alias="CONNECTIONS_TABLE_NAME", min_length=3)
    capacity_table_name: str = Field(validation_alias="CAPACITY_TABLE_NAME", min_length=3)
    # where a settlement that failed after its answer is kept, for the capacity-settlements consumer
    capacity_settlements_queue_url: str = Field(validation_alias="CAPACITY_SETTLEMENTS_QUEUE_URL", min_length=1)
    # The longest silence between two pieces of a streamed answer before the gateway gives up on the provider
    # (a whole answer that is not streamed may take all the time the invocation has). Under API Gateway's
    # 5-minute idle limit for a streamed response, so the client hears our 504 rather than a dropped line.
    provider_idle_timeout_seconds: float = Field(
        default=120.0, validation_alias="PROVIDER_IDLE_TIMEOUT_SECONDS", gt=0, le=290
    )
    # API Gateway closes a streamed response that sends nothing for 5 minutes; a whole answer still awaited after
    # this long commits to 200 and keeps the line open with blanks (JSON allows leading whitespace).
    whole_answer_keepalive_after_seconds: float = Field(
        default=240.0, validation_alias="WHOLE_ANSWER_KEEPALIVE_AFTER_SECONDS", gt=0, le=280
    )
    # How long a warm instance answers from a connection it has read: edits and deletes apply within this time.
    connection_cache_seconds: float = Field(default=5.0, validation_alias="CONNECTION_CACHE_SECONDS", ge=0, le=60)
    # The longest a test of a connection waits for its provider: a model list answers in well under a second.
    connection_test_timeout_seconds: float = Field(
        default=10.0, validation_alias="CONNECTION_TEST_TIMEOUT_SECONDS", gt=0, le=25
    )
    # Only the local stack and end-to-end tests point Bedrock elsewhere (a loopback fake).
    bedrock_endpoint_url: str | None = Field(default=None, validation_alias="BEDROCK_ENDPOINT_URL")


class DiscoverySettings(_Settings):
    connections_table_name: str = Field(validation_alias="CONNECTIONS_TABLE_NAME", min_length=3)


class UsageSettings(_Settings):
    usage_table_name: str = Field(validation_alias="USAGE_TABLE_NAME", min_length=3)


class EventOutboxSettings(_Settings):
    event_bus_name: str = Field(validation_alias="EVENT_BUS_NAME", min_length=1)


class CapacitySettlementsSettings(_Settings):
    capacity_table_name: str = Field(validation_alias="CAPACITY_TABLE_NAME", min_length=3)


class ConnectionRemainsSettings(_Settings):
    capacity_table_name: str = Field(validation_alias="CAPACITY_TABLE_NAME", min_length=3)
    usage_table_name: str = Field(validation_alias="USAGE_TABLE_NAME", min_length=3)
    connections_table_name: str = Field(validation_alias="CONNECTIONS_TABLE_NAME", min_length=3)


class BedrockQuotasSettings(_Settings, CipherSettings, EventSettings):
    connections_table_name: str = Field(validation_alias="CONNECTIONS_TABLE_NAME", min_length=3)
