"""Builds the use cases with their AWS adapters from a function's settings (production and local stack).

Each factory imports what it builds, so that a function loads its own adapters and nothing of another
function's, and boto3 and botocore when it makes its first client rather than when its handler imports this
module (docs/decisions.md, 2026-12-07 "Cold starts").
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from vmx.aws.event_bus import EVENTS_DEFERRED_METRIC, EVENTS_NOT_PUBLISHED_METRIC, RetryPolicy
from vmx.settings import (
    AuthorizerSettings,
    BaseUrlSettings,
    BedrockQuotasSettings,
    CapacitySettlementsSettings,
    CipherSettings,
    CompletionsSettings,
    ConnectionRemainsSettings,
    ConnectionsSettings,
    DiscoverySettings,
    EventOutboxSettings,
    EventSettings,
    TenancySettings,
    UsageSettings,
)

if TYPE_CHECKING:
    import boto3
    from aws_lambda_powertools import Metrics
    from botocore.config import Config

    from vmx.aws.bedrock_accounts import ClientMaker
    from vmx.aws.event_bus import FailureLog
    from vmx.aws.event_outbox import EventOutboxConsumer
    from vmx.credentials.ports import CredentialCipher
    from vmx.events.ports import EventPublisher
    from vmx.providers.addresses import AddressPolicy
    from vmx.storage.capacity_store import DynamoCapacityCounters
    from vmx.storage.connection_remains import DynamoConnectionRemains
    from vmx.storage.discovered_store import DynamoDiscoveredCapacity
    from vmx.storage.tenancy_store import DynamoTenancyRepository
    from vmx.storage.usage_store import DynamoUsageStatistics
    from vmx.use_cases.bedrock_quotas import BedrockQuotaPorts
    from vmx.use_cases.capacity_report import CapacityReporter
    from vmx.use_cases.completions import CompletionService
    from vmx.use_cases.connection_tests import ConnectionTests
    from vmx.use_cases.connections import ConnectionService
    from vmx.use_cases.tenancy import TenancyService
    from vmx.use_cases.usage_report import UsageReporter

    # made when first read, by __getattr__ below
    BUS_CLIENT_CONFIG: Config
    OUTBOX_CLIENT_CONFIG: Config


def tenancy_repository(settings: AuthorizerSettings | TenancySettings) -> "DynamoTenancyRepository":
    from vmx.storage.tenancy_store import DynamoTenancyRepository

    return DynamoTenancyRepository(settings.tenancy_table_name, settings.aws_region)


def tenancy_service(settings: TenancySettings, events: "EventPublisher") -> "TenancyService":
    from vmx.clock import utc_now
    from vmx.storage.connection_store import DynamoConnectionRepository
    from vmx.use_cases.tenancy import TenancyService

    connections = DynamoConnectionRepository(
        settings.connections_table_name, settings.aws_region, tenancy_table_name=settings.tenancy_table_name
    )
    return TenancyService(tenancy_repository(settings), connections, utc_now, events)


def address_policy(settings: BaseUrlSettings) -> "AddressPolicy":
    from vmx.providers.addresses import AddressPolicy

    return AddressPolicy(allow_loopback=settings.allow_loopback_base_urls, own_hosts=settings.own_hosts)


def connection_service(settings: ConnectionsSettings, events: "EventPublisher") -> "ConnectionService":
    from vmx.clock import utc_now
    from vmx.storage.connection_store import DynamoConnectionRepository
    from vmx.use_cases.connections import ConnectionService

    connections = DynamoConnectionRepository(
        settings.connections_table_name, settings.aws_region, tenancy_table_name=settings.tenancy_table_name
    )
    cipher = credential_cipher(settings, settings.aws_region)
    return ConnectionService(
        connections, tenancy_repository(settings), cipher, utc_now, events, address_policy(settings)
    )


def usage_reporter(settings: ConnectionsSettings) -> "UsageReporter":
    from vmx.clock import utc_now
    from vmx.storage.connection_store import DynamoConnectionRepository
    from vmx.storage.usage_store import DynamoUsageStatistics
    from vmx.use_cases.usage_report import UsageReporter

    connections = DynamoConnectionRepository(settings.connections_table_name, settings.aws_region)
    usage = DynamoUsageStatistics(settings.usage_table_name, settings.aws_region, utc_now)
    return UsageReporter(connections, usage, utc_now)


def capacity_reporter(settings: ConnectionsSettings) -> "CapacityReporter":
    from vmx.clock import utc_now
    from vmx.storage.capacity_store import DynamoCapacityCounters
    from vmx.storage.connection_store import DynamoConnectionRepository
    from vmx.use_cases.capacity_report import CapacityReporter

    connections = DynamoConnectionRepository(settings.connections_table_name, settings.aws_region)
    counters = DynamoCapacityCounters(settings.capacity_table_name, settings.aws_region)
    return CapacityReporter(connections, counters, utc_now)


# The bus and the outbox get one attempt per call from botocore (the publisher retries within its own budget); one
# call takes at most its connect and read timeouts.
_CONNECT_SECONDS = 0.5
_READ_SECONDS = 1.0
# The longest a publish takes, bus and outbox both failing slowly (4.6 s: two attempts on the bus, one on the
# outbox, as many as fit; vmx.aws.event_bus.RetryPolicy): well within every publishing function's timeout.
PUBLISH_RETRY = RetryPolicy(
    attempt_seconds=_CONNECT_SECONDS + _READ_SECONDS, keep_seconds=_CONNECT_SECONDS + _READ_SECONDS, budget_seconds=5.0
)
_PUBLISHING_CLIENT_CONFIGS = ("BUS_CLIENT_CONFIG", "OUTBOX_CLIENT_CONFIG")


@cache
def _publishing_client_config(name: str) -> "Config":
    from botocore.config import Config

    return Config(retries={"total_max_attempts": 1}, connect_timeout=_CONNECT_SECONDS, read_timeout=_READ_SECONDS)


def __getattr__(name: str) -> object:
    """BUS_CLIENT_CONFIG and OUTBOX_CLIENT_CONFIG, made when first read, so that importing this module does not
    load botocore."""
    if name in _PUBLISHING_CLIENT_CONFIGS:
        return _publishing_client_config(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def event_publisher(settings: EventSettings, log: "FailureLog", metrics: "Metrics | None") -> "EventPublisher":
    """Counts in `metrics` the events kept for later (EventsDeferred) and those lost (EventsNotPublished)."""
    import boto3
    from aws_lambda_powertools.metrics import MetricUnit

    from vmx.aws.event_bus import EventBridgePublisher
    from vmx.aws.event_outbox import SqsEventOutbox

    def count(name: str) -> Callable[[int], None]:
        return lambda events: metrics.add_metric(name=name, unit=MetricUnit.Count, value=events) if metrics else None

    outbox = SqsEventOutbox(
        boto3.client("sqs", region_name=settings.aws_region, config=_publishing_client_config("OUTBOX_CLIENT_CONFIG")),
        settings.event_outbox_queue_url,
    )
    return EventBridgePublisher(
        boto3.client("events", region_name=settings.aws_region, config=_publishing_client_config("BUS_CLIENT_CONFIG")),
        settings.event_bus_name,
        log,
        on_not_published=count(EVENTS_NOT_PUBLISHED_METRIC),
        outbox=outbox,
        on_deferred=count(EVENTS_DEFERRED_METRIC),
        retry=PUBLISH_RETRY,
    )


def event_outbox_consumer(settings: EventOutboxSettings) -> "EventOutboxConsumer":
    import boto3
    from botocore.config import Config

    from vmx.aws.event_outbox import EventOutboxConsumer

    # one attempt per message and invocation: SQS delivers a failed one again (system.EVENT_OUTBOX's timeout
    # holds a whole batch of calls that time out)
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1)
    return EventOutboxConsumer(
        boto3.client("events", region_name=settings.aws_region, config=config), settings.event_bus_name
    )


@dataclass(frozen=True)
class Gateway:
    """The completions function's use cases: completions, and the tests of connections, which open credentials and
    reach providers as completions do."""

    completions: "CompletionService"
    connection_tests: "ConnectionTests"


def gateway(settings: CompletionsSettings, events: "EventPublisher") -> Gateway:
    import boto3
    from botocore.config import Config

    from vmx.clock import utc_now
    from vmx.completions.probes import probe
    from vmx.completions.providers import Transports, bedrock_client_factory, call_provider, open_stream
    from vmx.providers.addresses import guarded_pool_manager
    from vmx.storage.capacity_store import DynamoCapacityCounters
    from vmx.storage.connection_store import DynamoConnectionRepository
    from vmx.storage.low_level import longest_call_seconds
    from vmx.storage.settlement_queue import SqsSettlementQueue
    from vmx.use_cases.completions import CompletionService
    from vmx.use_cases.connection_tests import ConnectionTests
    from vmx.use_cases.credentials_cache import CredentialCache
    from vmx.use_cases.recent_connections import RecentConnections

    repository = DynamoConnectionRepository(settings.connections_table_name, settings.aws_region)
    connections = RecentConnections(repository, settings.connection_cache_seconds)
    # Bounded, so that each write after an answer can be tried again within the time the invocation keeps for it.
    capacity_config = Config(connect_timeout=0.5, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 3})
    capacity_client = boto3.client("dynamodb", region_name=settings.aws_region, config=capacity_config)
    counters = DynamoCapacityCounters(settings.capacity_table_name, settings.aws_region, client=capacity_client)
    settlements_config = Config(
        connect_timeout=0.5, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 2}
    )
    settlements = SqsSettlementQueue(
        boto3.client("sqs", region_name=settings.aws_region, config=settlements_config),
        settings.capacity_settlements_queue_url,
    )
    # bounded, as every wait before an answer must fit the invocation's time (and a test's 10 s or so)
    sts_config = Config(connect_timeout=1, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 2})
    bedrock = bedrock_client_factory(
        boto3.client("sts", region_name=settings.aws_region, config=sts_config),
        endpoint_url=settings.bedrock_endpoint_url,
    )
    addresses = address_policy(settings)
    transports = Transports(http=guarded_pool_manager(addresses, maxsize=10), bedrock_client=bedrock)
    credentials = CredentialCache(credential_cipher(settings, settings.aws_region))
    completions = CompletionService(
        connections,
        counters,
        credentials,
        lambda call: call_provider(call, transports),
        lambda call: open_stream(call, transports),
        utc_now,
        settings.provider_idle_timeout_seconds,
        events,
        settlements,
        settle_attempt_seconds=longest_call_seconds(capacity_config),
        defer_seconds=longest_call_seconds(settlements_config),
    )
    # read afresh, not through the completions' cache: a test follows the edit it checks
    tests = ConnectionTests(
        repository,
        credentials,
        lambda provider, config, secrets, timeout: probe(provider, config, secrets, transports, bedrock, timeout),
        utc_now,
        settings.connection_test_timeout_seconds,
        addresses,
    )
    return Gateway(completions, tests)


def credential_cipher(settings: CipherSettings, region: str) -> "CredentialCipher":
    if settings.credentials_cipher == "sodium":
        from vmx.credentials.sodium import SodiumCipher

        assert settings.credentials_sodium_key is not None
        return SodiumCipher(settings.credentials_sodium_key)
    import boto3

    from vmx.aws.kms_cipher import KmsCipher

    assert settings.credentials_kms_key_id is not None
    return KmsCipher(boto3.client("kms", region_name=region), settings.credentials_kms_key_id)


def discovered_capacity_writer(settings: DiscoverySettings) -> "DynamoDiscoveredCapacity":
    from vmx.storage.discovered_store import DynamoDiscoveredCapacity

    return DynamoDiscoveredCapacity(settings.connections_table_name, settings.aws_region)


def usage_statistics(settings: UsageSettings) -> "DynamoUsageStatistics":
    from vmx.clock import utc_now
    from vmx.storage.usage_store import DynamoUsageStatistics

    return DynamoUsageStatistics(settings.usage_table_name, settings.aws_region, utc_now)


def settlement_counters(settings: CapacitySettlementsSettings) -> "DynamoCapacityCounters":
    from vmx.storage.capacity_store import DynamoCapacityCounters

    return DynamoCapacityCounters(settings.capacity_table_name, settings.aws_region)


def connection_remains(settings: ConnectionRemainsSettings) -> "DynamoConnectionRemains":
    from vmx.clock import utc_now
    from vmx.storage.connection_remains import DynamoConnectionRemains

    return DynamoConnectionRemains(
        capacity_table=settings.capacity_table_name,
        usage_table=settings.usage_table_name,
        connections_table=settings.connections_table_name,
        region=settings.aws_region,
        clock=utc_now,
    )


def aws_clients(session: "boto3.session.Session") -> "ClientMaker":
    """The quotas run's Bedrock and Service Quotas clients (vmx.aws.bedrock_accounts.aws_clients), looked up
    here when the ports are built, so a test can give its own."""
    from vmx.aws.bedrock_accounts import aws_clients as clients_of

    return clients_of(session)


def bedrock_quotas(settings: BedrockQuotasSettings, events: "EventPublisher") -> "BedrockQuotaPorts":
    import boto3

    from vmx.aws.bedrock_accounts import AwsBedrockAccounts
    from vmx.clock import utc_now
    from vmx.completions.aws_access import AssumedRoles
    from vmx.storage.connection_store import DynamoConnectionRepository
    from vmx.use_cases.bedrock_quotas import BedrockQuotaPorts
    from vmx.use_cases.credentials_cache import CredentialCache

    region = settings.aws_region
    roles = AssumedRoles(boto3.client("sts", region_name=region))
    return BedrockQuotaPorts(
        connections=DynamoConnectionRepository(settings.connections_table_name, region),
        credentials=CredentialCache(credential_cipher(settings, region)),
        accounts=AwsBedrockAccounts(roles, aws_clients(boto3.session.Session())),
        publisher=events,
        clock=utc_now,
    )
