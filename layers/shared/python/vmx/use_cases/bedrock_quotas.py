"""Bedrock's limits, which its responses never state: read on a schedule from each connection's account's Service
Quotas and published as RateLimitsObserved events (source `service-quotas`), which the discovery consumer records.

For each Bedrock connection and each of its models (its allowedModels, else its provider's default models), the
run asks Bedrock for the model's provider and model names (`GetFoundationModel`), then finds the account's per-minute
quotas named after them, e.g. "On-demand InvokeModel tokens per minute for Anthropic Claude 3 Haiku" or, in older
wording, "On-demand model inference requests per minute for Amazon Nova Pro". A model id with an inference profile's
prefix (`us.`, `eu.`, `global.`, ...) takes its cross-Region quotas instead of its on-demand ones.

A connection whose credentials fail, or a model without quotas, is logged and skipped: one never stops the run.
"""

import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from pydantic import ValidationError

from vmx.capacity.limits import MAX_LIMIT, CapacityPeriod
from vmx.clock import Clock
from vmx.completions.bedrock import access_of
from vmx.completions.calls import BedrockAccess
from vmx.completions.providers import DEFAULT_MODELS
from vmx.connections.models import Connection
from vmx.credentials.errors import CredentialsUnavailable, CredentialsUnreadable
from vmx.discovery.headers import ObservedLimit
from vmx.events.models import ObservedCapacity, RateLimitsObserved
from vmx.events.ports import EventPublisher
from vmx.providers.catalog import ProviderId
from vmx.providers.config import BedrockConfig
from vmx.use_cases.credentials_cache import CredentialCache

BEDROCK_PROVIDERS = (ProviderId.AWS_BEDROCK, ProviderId.AWS_BEDROCK_INVOKE)
SOURCE = "service-quotas"


@dataclass(frozen=True)
class FoundationModel:
    """A Bedrock model as GetFoundationModel names it, e.g. provider "Anthropic", model "Claude 3 Haiku"."""

    provider_name: str
    model_name: str


@dataclass(frozen=True)
class ServiceQuota:
    name: str
    value: float


class QuotaReadFailed(Exception):
    """The account's credentials, Bedrock or Service Quotas refused or could not be reached.

    `code` names why (an AWS error code or one of ours); the message never holds a secret.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class BedrockAccount(Protocol):
    """Bedrock and Service Quotas in one account and region, with the credentials of the connection that opened it."""

    def foundation_model(self, model_id: str) -> FoundationModel:
        """Raises QuotaReadFailed, for a model Bedrock does not know too."""
        ...

    def bedrock_quotas(self) -> list[ServiceQuota]:
        """Every quota of the `bedrock` service code that applies to the account, all pages of them.

        Raises QuotaReadFailed."""
        ...


class BedrockAccounts(Protocol):
    def open(self, access: BedrockAccess) -> BedrockAccount:
        """Raises QuotaReadFailed when the access's credentials cannot be had (a role that cannot be assumed)."""
        ...


class BedrockConnections(Protocol):
    def scan_by_providers(self, providers: Collection[ProviderId]) -> Iterator[Connection]:
        """Every connection of these providers, in every workspace and environment."""
        ...


class RunLog(Protocol):
    """What the run needs of a logger: Powertools' Logger and the standard library's both fit."""

    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...


@dataclass(frozen=True)
class BedrockQuotaPorts:
    connections: BedrockConnections
    credentials: CredentialCache
    accounts: BedrockAccounts
    publisher: EventPublisher
    clock: Clock


@dataclass
class QuotaRefreshReport:
    connections_seen: int = 0
    connections_skipped: int = 0
    models_published: int = 0
    models_skipped: int = 0
    # False when the run stopped early, before the function's time ran out: later connections were not read
    finished: bool = True


def refresh_bedrock_quotas(
    ports: BedrockQuotaPorts, log: RunLog, out_of_time: Callable[[], bool]
) -> QuotaRefreshReport:
    """Publishes one RateLimitsObserved per Bedrock connection and model whose quotas the account states.

    Quotas and model names are read once per account and region in a run, however many connections share them.
    `out_of_time` is asked before each connection; when it answers True the run stops and says so in its report.
    """
    report = QuotaRefreshReport()
    run = _Run(ports, log, report)
    for connection in ports.connections.scan_by_providers(BEDROCK_PROVIDERS):
        if out_of_time():
            report.finished = False
            log.warning("bedrock quotas run stopped before its time ran out", extra=_counts(report))
            break
        report.connections_seen += 1
        events = run.observations(connection)
        if events:
            ports.publisher.publish(events)
            report.models_published += len(events)
    return report


def models_of(connection: Connection) -> list[str]:
    """The models a connection is used with: its allowedModels, else its provider's default models."""
    if connection.allowed_models is not None:
        return list(connection.allowed_models)
    return list(DEFAULT_MODELS[connection.provider])


class InferenceScope(StrEnum):
    ON_DEMAND = "on-demand"
    CROSS_REGION = "cross-region"
    GLOBAL = "global cross-region"


# What precedes "requests"/"tokens per minute for ..." in a quota's name (casefolded), per scope.
_WORDINGS: dict[str, InferenceScope] = {
    "on-demand model inference": InferenceScope.ON_DEMAND,
    "on-demand invokemodel": InferenceScope.ON_DEMAND,
    "cross-region model inference": InferenceScope.CROSS_REGION,
    "cross-region invokemodel": InferenceScope.CROSS_REGION,
    "global cross-region model inference": InferenceScope.GLOBAL,
    "global cross-region invokemodel": InferenceScope.GLOBAL,
}
_PER_MINUTE = re.compile(r"^(?P<wording>.+?) (?P<kind>requests|tokens) per minute for (?P<subject>.+)$")
# The prefixes of Bedrock's system-defined inference profiles, which route a model across Regions.
_GEOGRAPHIC_PROFILES = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca"})
_GLOBAL_PROFILE = "global"
# A foundation model id's version, as in anthropic.claude-3-5-sonnet-20241022-v2:0
_MODEL_VERSION = re.compile(r"-(v\d+)(?::\d+)?$")


def foundation_model_id(model_id: str) -> tuple[str, InferenceScope]:
    """The foundation model behind a model id, and the quotas that apply: `us.anthropic.x` is `anthropic.x` routed
    across Regions (cross-region), `global.anthropic.x` worldwide, and `anthropic.x` itself on-demand."""
    prefix, dot, rest = model_id.partition(".")
    if dot and rest:
        if prefix == _GLOBAL_PROFILE:
            return rest, InferenceScope.GLOBAL
        if prefix in _GEOGRAPHIC_PROFILES:
            return rest, InferenceScope.CROSS_REGION
    return model_id, InferenceScope.ON_DEMAND


def quota_limit(quotas: list[ServiceQuota], model_id: str, model: FoundationModel) -> ObservedLimit | None:
    """The per-minute requests and tokens quotas for the model, or None when the account states neither.

    A quota counts when its name, casefolded and with single spaces, is "<wording> requests|tokens per minute for
    <providerName> <modelName>", where the wording fits the model id's scope (on-demand or cross-Region, in the
    "model inference" or "InvokeModel" phrasing). Quota names may add the version the model id ends with ("... Claude
    Sonnet 4.5 V1" for anthropic.claude-sonnet-4-5-...-v1:0). Should two quotas match, the lower holds; a value that is
    not a whole number within our limits is ignored.
    """
    foundation_id, scope = foundation_model_id(model_id)
    subject = _normalized(f"{model.provider_name} {model.model_name}")
    subjects = {subject}
    version = _MODEL_VERSION.search(foundation_id)
    if version:
        subjects.add(f"{subject} {version.group(1).casefold()}")
    found: dict[str, int] = {}
    for quota in quotas:
        matched = _PER_MINUTE.match(_normalized(quota.name))
        if matched is None or matched["subject"] not in subjects or _WORDINGS.get(matched["wording"]) is not scope:
            continue
        value = _whole(quota.value)
        if value is not None:
            kind = matched["kind"]
            found[kind] = min(found.get(kind, value), value)
    if not found:
        return None
    return ObservedLimit(CapacityPeriod.MINUTE, requests=found.get("requests"), tokens=found.get("tokens"))


def rate_limits_observed(
    connection: Connection, model_id: str, limit: ObservedLimit, clock: Clock
) -> RateLimitsObserved:
    return RateLimitsObserved(
        occurred_at=clock(),
        workspace_id=connection.workspace_id,
        environment_id=connection.environment_id,
        connection_id=connection.connection_id,
        connection_name=connection.name,
        provider=connection.provider,
        model=model_id,
        capacity=[ObservedCapacity(period=limit.period, requests=limit.requests, tokens=limit.tokens)],
        source=SOURCE,
    )


@dataclass
class _Run:
    """One run's state: what it has read per account and region, and its counts."""

    ports: BedrockQuotaPorts
    log: RunLog
    report: QuotaRefreshReport
    _quotas: dict[tuple[str, str], list[ServiceQuota]] = field(default_factory=dict)
    _models: dict[tuple[str, str, str], FoundationModel] = field(default_factory=dict)

    def observations(self, connection: Connection) -> list[RateLimitsObserved]:
        try:
            access = self._access(connection)
            account = self.ports.accounts.open(access)
            quotas = self._account_quotas(access, account)
        except QuotaReadFailed as failure:
            self.report.connections_skipped += 1
            self.log.warning("bedrock connection skipped", extra=_about(connection, failure))
            return []
        events = []
        for model_id in models_of(connection):
            try:
                model = self._foundation_model(access, account, model_id)
            except QuotaReadFailed as failure:
                self._skip_model(connection, model_id, failure)
                continue
            limit = quota_limit(quotas, model_id, model)
            if limit is None:
                message = f"the account states no per-minute quota for {model.provider_name} {model.model_name}"
                self._skip_model(connection, model_id, QuotaReadFailed("no_quota", message))
                continue
            events.append(rate_limits_observed(connection, model_id, limit, self.ports.clock))
        return events

    def _access(self, connection: Connection) -> BedrockAccess:
        try:
            secrets = self.ports.credentials.secrets_of(connection)
            # validated again: the connection may predate a rule of its provider's configuration
            return access_of(BedrockConfig.model_validate({**connection.settings, **secrets}))
        except CredentialsUnreadable as exc:
            raise QuotaReadFailed("credentials_unreadable", "the connection's stored keys cannot be opened") from exc
        except CredentialsUnavailable as exc:
            raise QuotaReadFailed("credentials_unavailable", "the key service could not open the stored keys") from exc
        except ValidationError:
            message = "the connection's configuration is not valid for AWS Bedrock"
            raise QuotaReadFailed("connection_misconfigured", message) from None

    def _account_quotas(self, access: BedrockAccess, account: BedrockAccount) -> list[ServiceQuota]:
        key = (_account_key(access), access.region)
        if key not in self._quotas:
            self._quotas[key] = account.bedrock_quotas()
        return self._quotas[key]

    def _foundation_model(self, access: BedrockAccess, account: BedrockAccount, model_id: str) -> FoundationModel:
        foundation_id, _ = foundation_model_id(model_id)
        key = (_account_key(access), access.region, foundation_id)
        if key not in self._models:
            self._models[key] = account.foundation_model(foundation_id)
        return self._models[key]

    def _skip_model(self, connection: Connection, model_id: str, failure: QuotaReadFailed) -> None:
        self.report.models_skipped += 1
        self.log.warning("bedrock model skipped", extra={**_about(connection, failure), "model": model_id})


def _account_key(access: BedrockAccess) -> str:
    """Who the quotas belong to: a role's account, or (without a call to learn their account) the keys' id."""
    if access.role_arn is not None:
        return "account:" + access.role_arn.split(":")[4]
    assert access.keys is not None  # access_of gives a role or keys
    return "keys:" + access.keys.access_key_id.get_secret_value()


def _about(connection: Connection, failure: QuotaReadFailed) -> dict[str, object]:
    return {
        "workspace_id": connection.workspace_id,
        "environment_id": connection.environment_id,
        "connection_id": connection.connection_id,
        "provider": connection.provider.value,
        "reason": failure.code,
        "detail": failure.message,
    }


def _counts(report: QuotaRefreshReport) -> dict[str, object]:
    return {
        "connections_seen": report.connections_seen,
        "connections_skipped": report.connections_skipped,
        "models_published": report.models_published,
        "models_skipped": report.models_skipped,
    }


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold()


def _whole(value: float) -> int | None:
    if not math.isfinite(value) or value < 0 or value != int(value) or value > MAX_LIMIT:
        return None
    return int(value)
