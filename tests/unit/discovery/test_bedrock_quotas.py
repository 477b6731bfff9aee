"""Bedrock quotas read from Service Quotas: which quota names count for a model, and the scheduled run over fakes
(connections, a fake Bedrock per account, a publisher that keeps what it is given)."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from tests.event_fakes import InMemoryEventPublisher
from tests.fakes import FakeClock
from tests.unit.builders import World, connection_record
from vmx.capacity.limits import MAX_LIMIT, CapacityPeriod
from vmx.completions.calls import BedrockAccess
from vmx.completions.providers import DEFAULT_MODELS
from vmx.connections.models import Connection
from vmx.credentials.sealed import EncryptionContext
from vmx.discovery.headers import ObservedLimit
from vmx.events.models import ObservedCapacity, RateLimitsObserved
from vmx.providers.catalog import ProviderId
from vmx.use_cases.bedrock_quotas import (
    BedrockAccount,
    BedrockQuotaPorts,
    FoundationModel,
    InferenceScope,
    QuotaReadFailed,
    QuotaRefreshReport,
    ServiceQuota,
    foundation_model_id,
    models_of,
    quota_limit,
    refresh_bedrock_quotas,
)
from vmx.use_cases.connections import ConnectionScope
from vmx.use_cases.credentials_cache import CredentialCache

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/VmxBedrockAccess"
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-CANARY"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
HAIKU_NAMES = FoundationModel("Anthropic", "Claude 3 Haiku")
NOVA = "amazon.nova-pro-v1:0"
NOVA_NAMES = FoundationModel("Amazon", "Nova Pro")
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET_45_NAMES = FoundationModel("Anthropic", "Claude Sonnet 4.5")


def quotas(**named: float) -> list[ServiceQuota]:
    return [ServiceQuota(name, value) for name, value in named.items()]


def per_minute(requests: int | None = None, tokens: int | None = None) -> ObservedLimit:
    return ObservedLimit(CapacityPeriod.MINUTE, requests=requests, tokens=tokens)


# Quota names and what they say for Claude 3 Haiku called on demand (anthropic.claude-3-haiku-...)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(
            {
                "On-demand model inference requests per minute for Anthropic Claude 3 Haiku": 1000,
                "On-demand model inference tokens per minute for Anthropic Claude 3 Haiku": 2000000,
            },
            per_minute(1000, 2000000),
            id="model-inference-wording",
        ),
        pytest.param(
            {"On-demand InvokeModel tokens per minute for Anthropic Claude 3 Haiku": 400000},
            per_minute(tokens=400000),
            id="invokemodel-wording-tokens-only",
        ),
        pytest.param(
            {"ON-DEMAND  invokemodel REQUESTS per minute for  anthropic claude 3 haiku": 50},
            per_minute(requests=50),
            id="any-case-and-spacing",
        ),
        pytest.param(
            {
                "On-demand InvokeModel tokens per minute for Anthropic Claude 3 Haiku": 400000,
                "On-demand model inference tokens per minute for Anthropic Claude 3 Haiku": 300000,
            },
            per_minute(tokens=300000),
            id="the-lower-of-two",
        ),
    ],
)
def test_the_per_minute_quotas_named_after_the_model_count(names: dict[str, float], expected: ObservedLimit) -> None:
    assert quota_limit(quotas(**names), HAIKU, HAIKU_NAMES) == expected


@pytest.mark.parametrize(
    "name",
    [
        "On-demand InvokeModel tokens per minute for Anthropic Claude 3 Haiku V2",
        "On-demand InvokeModel tokens per minute for Anthropic Claude 3.5 Haiku",
        "On-demand InvokeModel tokens per minute for Amazon Claude 3 Haiku",
        "Cross-Region InvokeModel tokens per minute for Anthropic Claude 3 Haiku",
        "Global cross-Region model inference tokens per minute for Anthropic Claude 3 Haiku",
        "Model invocation max tokens per day for Anthropic Claude 3 Haiku",
        "On-demand InvokeModel input tokens per minute for Anthropic Claude 3 Haiku",
        "Batch inference tokens per minute for Anthropic Claude 3 Haiku",
        "On-demand InvokeModel tokens per minute for Anthropic Claude 3 Haiku (doubled for cross-region calls)",
    ],
)
def test_other_models_scopes_windows_and_kinds_do_not_count(name: str) -> None:
    assert quota_limit(quotas(**{name: 1000}), HAIKU, HAIKU_NAMES) is None


@pytest.mark.parametrize("value", [-1, 2.5, float("inf"), float("nan"), MAX_LIMIT + 1])
def test_a_value_that_is_no_whole_number_within_our_limits_is_ignored(value: float) -> None:
    name = "On-demand InvokeModel tokens per minute for Anthropic Claude 3 Haiku"

    assert quota_limit(quotas(**{name: value}), HAIKU, HAIKU_NAMES) is None


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        (HAIKU, (HAIKU, InferenceScope.ON_DEMAND)),
        ("us." + HAIKU, (HAIKU, InferenceScope.CROSS_REGION)),
        ("eu." + HAIKU, (HAIKU, InferenceScope.CROSS_REGION)),
        ("apac." + HAIKU, (HAIKU, InferenceScope.CROSS_REGION)),
        ("us-gov." + HAIKU, (HAIKU, InferenceScope.CROSS_REGION)),
        ("global." + SONNET_45, (SONNET_45, InferenceScope.GLOBAL)),
        ("meta.llama3-8b-instruct-v1:0", ("meta.llama3-8b-instruct-v1:0", InferenceScope.ON_DEMAND)),
    ],
)
def test_an_inference_profile_id_names_its_foundation_model_and_scope(
    model_id: str, expected: tuple[str, InferenceScope]
) -> None:
    assert foundation_model_id(model_id) == expected


def test_a_cross_region_profile_takes_the_cross_region_quotas() -> None:
    listed = quotas(
        **{
            "On-demand InvokeModel tokens per minute for Anthropic Claude 3 Haiku": 400000,
            "Cross-Region InvokeModel tokens per minute for Anthropic Claude 3 Haiku": 800000,
            "Cross-region model inference requests per minute for Anthropic Claude 3 Haiku": 2000,
        }
    )

    assert quota_limit(listed, "us." + HAIKU, HAIKU_NAMES) == per_minute(2000, 800000)
    assert quota_limit(listed, HAIKU, HAIKU_NAMES) == per_minute(tokens=400000)


def test_a_quota_name_may_add_the_version_the_model_id_ends_with() -> None:
    listed = quotas(
        **{
            "Global cross-Region model inference tokens per minute for Anthropic Claude Sonnet 4.5 V1": 5000000,
            "On-demand InvokeModel tokens per minute for Anthropic Claude Sonnet 4.5 V2": 1,
        }
    )

    assert quota_limit(listed, "global." + SONNET_45, SONNET_45_NAMES) == per_minute(tokens=5000000)
    assert quota_limit(listed, SONNET_45, SONNET_45_NAMES) is None


# The run


@dataclass
class FakeAccount:
    """One account's Bedrock and Service Quotas in one region; counts what it is asked."""

    models: dict[str, FoundationModel]
    quotas: list[ServiceQuota]
    quotas_fail: QuotaReadFailed | None = None
    quota_reads: int = 0
    model_reads: int = 0

    def foundation_model(self, model_id: str) -> FoundationModel:
        self.model_reads += 1
        if model_id not in self.models:
            raise QuotaReadFailed("ResourceNotFoundException", f"Bedrock does not know {model_id}")
        return self.models[model_id]

    def bedrock_quotas(self) -> list[ServiceQuota]:
        self.quota_reads += 1
        if self.quotas_fail is not None:
            raise self.quotas_fail
        return list(self.quotas)


@dataclass
class FakeAccounts:
    """`BedrockAccounts`: accounts by (role ARN or access key id, region); remembers each access it opened."""

    accounts: dict[tuple[str, str], FakeAccount] = field(default_factory=dict)
    refused_roles: set[str] = field(default_factory=set)
    opened: list[BedrockAccess] = field(default_factory=list)

    def add(self, who: str, region: str, account: FakeAccount) -> FakeAccount:
        self.accounts[(who, region)] = account
        return account

    def open(self, access: BedrockAccess) -> BedrockAccount:
        self.opened.append(access)
        if access.role_arn in self.refused_roles:
            raise QuotaReadFailed("provider_authentication_failed", f"could not assume {access.role_arn}")
        who = access.role_arn or (access.keys.access_key_id.get_secret_value() if access.keys else "")
        return self.accounts[(who, access.region)]


@dataclass
class RecordingLog:
    warnings: list[tuple[str, Mapping[str, object]]] = field(default_factory=list)

    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None:
        self.warnings.append((str(msg), dict(extra or {})))

    def reasons(self, message: str) -> list[tuple[object, object]]:
        return [(extra["connection_id"], extra["reason"]) for logged, extra in self.warnings if logged == message]


@dataclass
class Run:
    world: World
    accounts: FakeAccounts
    publisher: InMemoryEventPublisher
    log: RecordingLog
    clock: FakeClock

    def connection(
        self,
        settings: dict[str, object],
        secrets: dict[str, str] | None = None,
        allowed_models: list[str] | None = None,
        provider: ProviderId = ProviderId.AWS_BEDROCK,
        scope: ConnectionScope | None = None,
        sealed_for_another: bool = False,
    ) -> Connection:
        """Stores a connection with its secrets sealed by the fake cipher (for another connection: unreadable)."""
        scope = scope or self.world.scope
        connection_id = str(uuid.uuid4())
        connection = connection_record(
            at=datetime(2026, 11, 22, tzinfo=UTC),
            connection_id=connection_id,
            workspace_id=scope.workspace_id,
            environment_id=scope.environment_id,
            name=f"bedrock-{connection_id[:8]}",
            provider=provider,
            settings=settings,
            allowed_models=allowed_models,
        )
        context = connection.encryption_context
        if sealed_for_another:
            context = EncryptionContext(context.workspace_id, context.environment_id, str(uuid.uuid4()))
        sealed = self.world.cipher.seal({name: SecretStr(value) for name, value in (secrets or {}).items()}, context)
        connection = connection.model_copy(update={"secrets": sealed})
        self.world.connections.add(connection)
        return connection

    def role_connection(
        self,
        region: str = "eu-west-1",
        role: str = ROLE,
        allowed_models: list[str] | None = None,
        provider: ProviderId = ProviderId.AWS_BEDROCK,
        scope: ConnectionScope | None = None,
    ) -> Connection:
        settings: dict[str, object] = {"region": region, "iamRoleArn": role}
        return self.connection(settings, allowed_models=allowed_models, provider=provider, scope=scope)

    def __call__(self, out_of_time: bool = False) -> QuotaRefreshReport:
        ports = BedrockQuotaPorts(
            connections=self.world.connections,
            credentials=CredentialCache(self.world.cipher),
            accounts=self.accounts,
            publisher=self.publisher,
            clock=self.clock,
        )
        return refresh_bedrock_quotas(ports, self.log, out_of_time=lambda: out_of_time)

    def published(self) -> dict[tuple[str, str], list[ObservedCapacity]]:
        return {
            (event.connection_id, event.model): event.capacity for event in self.publisher.of_type(RateLimitsObserved)
        }


HAIKU_QUOTAS = {
    "On-demand model inference requests per minute for Anthropic Claude 3 Haiku": 1000,
    "On-demand model inference tokens per minute for Anthropic Claude 3 Haiku": 2000000,
}
NOVA_QUOTAS = {"On-demand InvokeModel tokens per minute for Amazon Nova Pro": 300000}
HAIKU_LIMIT = [ObservedCapacity(period=CapacityPeriod.MINUTE, requests=1000, tokens=2000000)]
NOVA_LIMIT = [ObservedCapacity(period=CapacityPeriod.MINUTE, requests=None, tokens=300000)]


def an_account(**quota_values: float) -> FakeAccount:
    return FakeAccount({HAIKU: HAIKU_NAMES, NOVA: NOVA_NAMES}, quotas(**quota_values))


@pytest.fixture
def run(world: World) -> Run:
    return Run(world, FakeAccounts(), InMemoryEventPublisher(), RecordingLog(), FakeClock())


def test_each_model_of_each_bedrock_connection_is_published_with_its_quotas(run: Run) -> None:
    run.accounts.add(ROLE, "eu-west-1", an_account(**HAIKU_QUOTAS, **NOVA_QUOTAS))
    converse = run.role_connection(allowed_models=[HAIKU, NOVA])
    invoke = run.role_connection(allowed_models=[HAIKU], provider=ProviderId.AWS_BEDROCK_INVOKE)
    run.connection({}, {"apiKey": "sk-not-bedrock"}, provider=ProviderId.OPENAI)

    report = run()

    assert run.published() == {
        (converse.connection_id, HAIKU): HAIKU_LIMIT,
        (converse.connection_id, NOVA): NOVA_LIMIT,
        (invoke.connection_id, HAIKU): HAIKU_LIMIT,
    }
    assert report == QuotaRefreshReport(connections_seen=2, models_published=3)


def test_an_event_says_where_it_comes_from_and_names_the_connection(run: Run) -> None:
    run.accounts.add(ROLE, "eu-west-1", an_account(**HAIKU_QUOTAS))
    connection = run.role_connection(allowed_models=[HAIKU])

    run()

    (event,) = run.publisher.of_type(RateLimitsObserved)
    assert (event.source, event.provider, event.model) == ("service-quotas", ProviderId.AWS_BEDROCK, HAIKU)
    assert (event.workspace_id, event.environment_id, event.connection_id, event.connection_name) == (
        connection.workspace_id,
        connection.environment_id,
        connection.connection_id,
        connection.name,
    )
    assert event.occurred_at == datetime(2025, 1, 1, tzinfo=UTC)


def test_a_connection_without_allowed_models_is_read_for_its_providers_default_models(run: Run) -> None:
    defaults = DEFAULT_MODELS[ProviderId.AWS_BEDROCK_INVOKE]
    account = run.accounts.add(ROLE, "eu-west-1", an_account())
    account.models = {model: FoundationModel("Anthropic", f"Model {n}") for n, model in enumerate(defaults)}
    account.quotas = quotas(
        **{f"On-demand InvokeModel tokens per minute for Anthropic Model {n}": 1000 + n for n in range(len(defaults))}
    )
    connection = run.role_connection(provider=ProviderId.AWS_BEDROCK_INVOKE)

    run()

    assert models_of(connection) == defaults
    assert {model for _, model in run.published()} == set(defaults)


def test_a_connection_with_no_allowed_model_has_nothing_to_read(run: Run) -> None:
    run.accounts.add(ROLE, "eu-west-1", an_account(**HAIKU_QUOTAS))
    run.role_connection(allowed_models=[])

    report = run()

    assert run.published() == {}
    assert report == QuotaRefreshReport(connections_seen=1)


def test_a_connection_with_stored_keys_reads_its_account_with_them_opened(run: Run) -> None:
    run.accounts.add("AKIASTATICEXAMPLE", "us-east-1", an_account(**HAIKU_QUOTAS))
    connection = run.connection(
        {"region": "us-east-1"},
        {"accessKeyId": "AKIASTATICEXAMPLE", "secretAccessKey": SECRET_KEY},
        allowed_models=[HAIKU],
    )

    run()

    (access,) = run.accounts.opened
    assert access.role_arn is None and access.keys is not None
    assert access.keys.secret_access_key.get_secret_value() == SECRET_KEY
    assert list(run.published()) == [(connection.connection_id, HAIKU)]


def test_a_connection_whose_role_cannot_be_assumed_is_skipped_and_the_run_goes_on(run: Run) -> None:
    refused = "arn:aws:iam::999988887777:role/Gone"
    run.accounts.refused_roles.add(refused)
    run.accounts.add(ROLE, "eu-west-1", an_account(**HAIKU_QUOTAS))
    skipped = run.role_connection(role=refused, allowed_models=[HAIKU])
    kept = run.role_connection(allowed_models=[HAIKU])

    report = run()

    assert list(run.published()) == [(kept.connection_id, HAIKU)]
    assert run.log.reasons("bedrock connection skipped") == [(skipped.connection_id, "provider_authentication_failed")]
    assert report == QuotaRefreshReport(connections_seen=2, connections_skipped=1, models_published=1)


def test_a_connection_whose_keys_cannot_be_opened_is_skipped(run: Run) -> None:
    run.accounts.add("AKIASTATICEXAMPLE", "us-east-1", an_account(**HAIKU_QUOTAS))
    connection = run.connection(
        {"region": "us-east-1"},
        {"accessKeyId": "AKIASTATICEXAMPLE", "secretAccessKey": SECRET_KEY},
        sealed_for_another=True,
    )

    report = run()

    assert run.log.reasons("bedrock connection skipped") == [(connection.connection_id, "credentials_unreadable")]
    assert report == QuotaRefreshReport(connections_seen=1, connections_skipped=1)


def test_a_connection_whose_configuration_is_no_longer_valid_is_skipped(run: Run) -> None:
    connection = run.connection({"region": "nowhere"}, allowed_models=[HAIKU])

    run()

    assert run.log.reasons("bedrock connection skipped") == [(connection.connection_id, "connection_misconfigured")]
    assert run.accounts.opened == []


def test_a_connection_whose_account_refuses_to_list_quotas_is_skipped(run: Run) -> None:
    account = run.accounts.add(ROLE, "eu-west-1", an_account(**HAIKU_QUOTAS))
    account.quotas_fail = QuotaReadFailed("AccessDeniedException", "Service Quotas refused (AccessDeniedException)")
    connection = run.role_connection(allowed_models=[HAIKU])

    report = run()

    assert run.log.reasons("bedrock connection skipped") == [(connection.connection_id, "AccessDeniedException")]
    assert report == QuotaRefreshReport(connections_seen=1, connections_skipped=1)


def test_a_model_without_quotas_or_unknown_to_bedrock_is_skipped_and_the_others_published(run: Run) -> None:
    run.accounts.add(ROLE, "eu-west-1", an_account(**HAIKU_QUOTAS))
    connection = run.role_connection(allowed_models=[NOVA, HAIKU, "acme.unknown-v1:0"])

    report = run()

    assert list(run.published()) == [(connection.connection_id, HAIKU)]
    skipped = [(extra["model"], extra["reason"]) for message, extra in run.log.warnings]
    assert skipped == [(NOVA, "no_quota"), ("acme.unknown-v1:0", "ResourceNotFoundException")]
    assert report == QuotaRefreshReport(connections_seen=1, models_published=1, models_skipped=2)


def test_quotas_and_model_names_are_read_once_per_account_and_region(run: Run) -> None:
    ireland = run.accounts.add(ROLE, "eu-west-1", an_account(**HAIKU_QUOTAS))
    same_account = run.accounts.add(f"arn:aws:iam::{ACCOUNT}:role/Other", "eu-west-1", ireland)
    frankfurt = run.accounts.add(ROLE, "eu-central-1", an_account(**HAIKU_QUOTAS))
    elsewhere = run.accounts.add(f"arn:aws:iam::{OTHER_ACCOUNT}:role/X", "eu-west-1", an_account(**HAIKU_QUOTAS))
    run.role_connection(allowed_models=[HAIKU])
    run.role_connection(allowed_models=[HAIKU, "us." + HAIKU], scope=run.world.another_workspace())
    run.role_connection(role=f"arn:aws:iam::{ACCOUNT}:role/Other", allowed_models=[HAIKU])
    run.role_connection(region="eu-central-1", allowed_models=[HAIKU])
    run.role_connection(role=f"arn:aws:iam::{OTHER_ACCOUNT}:role/X", allowed_models=[HAIKU])

    report = run()

    assert same_account is ireland
    assert (ireland.quota_reads, ireland.model_reads) == (1, 1)
    assert (frankfurt.quota_reads, frankfurt.model_reads) == (1, 1)
    assert (elsewhere.quota_reads, elsewhere.model_reads) == (1, 1)
    # the cross-region profile has no cross-region quota in these accounts
    assert report == QuotaRefreshReport(connections_seen=5, models_published=5, models_skipped=1)


def test_a_run_out_of_time_stops_before_the_next_connection_and_says_so(run: Run) -> None:
    run.accounts.add(ROLE, "eu-west-1", an_account(**HAIKU_QUOTAS))
    run.role_connection(allowed_models=[HAIKU])

    report = run(out_of_time=True)

    assert run.published() == {}
    assert report == QuotaRefreshReport(finished=False)
    assert [message for message, _ in run.log.warnings] == ["bedrock quotas run stopped before its time ran out"]


def test_nothing_logged_holds_a_secret(run: Run) -> None:
    account = run.accounts.add("AKIASTATICEXAMPLE", "us-east-1", an_account())
    account.quotas_fail = QuotaReadFailed("AccessDeniedException", "Service Quotas refused (AccessDeniedException)")
    run.connection(
        {"region": "us-east-1"},
        {"accessKeyId": "AKIASTATICEXAMPLE", "secretAccessKey": SECRET_KEY, "sessionToken": "FwoG-CANARY-TOKEN"},
        allowed_models=[HAIKU],
    )

    run()

    logged = repr(run.log.warnings)
    assert run.log.warnings
    assert SECRET_KEY not in logged and "CANARY" not in logged
