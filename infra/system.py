"""The one description of the system that both the CDK stack and the local stack read.

Plain data, no CDK imports: `infra/stack.py` turns it into CloudFormation and `local_stack/` into
tables on the emulator and routes on the loopback gateway, and both give each function the environment that
`infra.environments.environment_of` computes from its spec, so the two cannot drift apart.
"""

from dataclasses import dataclass, field

from pydantic import BaseModel

from vmx.http.limits import MAX_BODY_BYTES as MAX_BODY_BYTES
from vmx.http.limits import SECURITY_HEADERS as SECURITY_HEADERS
from vmx.settings import (
    AuthorizerSettings,
    BaseUrlSettings,
    BedrockQuotasSettings,
    CapacitySettlementsSettings,
    CompletionsSettings,
    ConnectionRemainsSettings,
    ConnectionsSettings,
    DiscoverySettings,
    EventOutboxSettings,
    TenancySettings,
    UsageSettings,
)


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str
    local: bool = False


@dataclass(frozen=True)
class Table:
    logical_id: str
    env_var: str
    partition_key: str
    sort_key: str
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    # folder under functions/ holding handler.py with lambda_handler(event, context)
    source_dir: str
    # the vmx.settings class its handler reads from the environment: infra.environments.environment_of gives it
    # what the class reads, and the spec tests hold the two together
    settings: type[BaseModel] = field(kw_only=True)
    # table logical id -> the DynamoDB actions the function needs on it (Query also covers its indexes)
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # KMS actions on the credentials key, constrained further by encryption context in the stack
    kms_actions: tuple[str, ...] = ()
    # sts:AssumeRole on the customer roles named by Bedrock connections (iamRoleArn)
    assumes_provider_roles: bool = False
    # events:PutEvents on the stack's bus (EVENT_BUS_NAME)
    publishes_events: bool = False
    # streams its responses (vmx.runtime, API Gateway's STREAM transfer mode): its handler returns a
    # vmx.http.streaming.StreamingResponse, written to the client as it is produced
    streams_responses: bool = False
    memory_mb: int = 512
    timeout_seconds: int = 15


@dataclass(frozen=True)
class ConsumedQueue:
    """An SQS queue whose consumer function reports partial batch failures; after `max_receive_count` failed
    receives a message moves to the queue's dead-letter queue, which has an alarm."""

    name: str
    consumer: str
    max_receive_count: int = field(default=5, kw_only=True)
    batch_size: int = field(default=10, kw_only=True)
    # how long SQS holds each message before its consumer may receive it (at most 900 s)
    delivery_delay_seconds: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class EventQueue(ConsumedQueue):
    """A consumed queue fed by an EventBridge rule on the bus, for these detail types."""

    detail_types: tuple[str, ...]


@dataclass(frozen=True)
class WorkQueue(ConsumedQueue):
    """A consumed queue that functions send messages to themselves (sqs:SendMessage on it alone), for work
    that must outlive the invocation that could not finish it; `url_env_var` tells each sender its URL."""

    senders: tuple[str, ...]
    url_env_var: str


@dataclass(frozen=True)
class Schedule:
    name: str
    function: str
    # an EventBridge schedule expression
    expression: str


@dataclass(frozen=True)
class Route:
    method: str
    # API Gateway resource path, e.g. /api/v1/workspaces/{workspaceId}
    path: str
    function: str
    authorized: bool = True


TENANCY_TABLE = Table(
    logical_id="TenancyTable",
    env_var="TENANCY_TABLE_NAME",
    partition_key="pk",
    sort_key="sk",
    indexes=(Index(name="gsi1", partition_key="gsi1pk", sort_key="gsi1sk"),),
)

CONNECTIONS_TABLE = Table(
    logical_id="ConnectionsTable",
    env_var="CONNECTIONS_TABLE_NAME",
    partition_key="pk",
    sort_key="sk",
    indexes=(Index(name="byCreatedAt", partition_key="pk", sort_key="createdSk", local=True),),
)

# Capacity counters: one item per connection (`CAP#<connectionId>` / `GLOBAL`) holding the current window
# of every period, and one per connection and client IP (`IP#<ip>`) that expires with its windows.
CAPACITY_TABLE = Table(
    logical_id="CapacityTable",
    env_var="CAPACITY_TABLE_NAME",
    partition_key="pk",
    sort_key="sk",
    ttl_attribute="expiresAt",
)

# Usage statistics: hour and day buckets per connection (`USAGE#<connectionId>` / `<granularity>#<start>`),
# and one marker per counted event (`EVENT#<eventId>`) that expires once duplicates can no longer arrive.
USAGE_TABLE = Table(
    logical_id="UsageTable",
    env_var="USAGE_TABLE_NAME",
    partition_key="pk",
    sort_key="sk",
    ttl_attribute="expiresAt",
)

TABLES: tuple[Table, ...] = (TENANCY_TABLE, CONNECTIONS_TABLE, CAPACITY_TABLE, USAGE_TABLE)

AUTHORIZER = Function(
    name="authorizer",
    description="Authenticates API keys for every route",
    source_dir="authorizer",
    settings=AuthorizerSettings,
    tables={TENANCY_TABLE.logical_id: ("dynamodb:GetItem",)},
    memory_mb=256,
    timeout_seconds=5,
)

TENANCY = Function(
    name="tenancy",
    description="Workspaces, environments and API keys",
    source_dir="tenancy",
    settings=TenancySettings,
    tables={
        TENANCY_TABLE.logical_id: (
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:BatchWriteItem",
        ),
        # a forced delete removes an environment's connections with it
        CONNECTIONS_TABLE.logical_id: ("dynamodb:Query", "dynamodb:DeleteItem"),
    },
    # ConnectionDeleted for each connection a forced delete removes
    publishes_events=True,
)

CONNECTIONS = Function(
    name="connections",
    description="AI connections and the provider catalogue",
    source_dir="connections",
    settings=ConnectionsSettings,
    tables={
        # reads the workspace and environment, and keeps their connection counts in the same transaction
        TENANCY_TABLE.logical_id: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        CONNECTIONS_TABLE.logical_id: (
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
        ),
        # reads the counters for the capacity utilization route, and the usage statistics
        CAPACITY_TABLE.logical_id: ("dynamodb:GetItem",),
        USAGE_TABLE.logical_id: ("dynamodb:Query",),
    },
    # only encrypts: decryption belongs to the function that calls providers
    kms_actions=("kms:GenerateDataKey",),
    publishes_events=True,
)

COMPLETIONS = Function(
    name="completions",
    description="The OpenAI-compatible endpoint: completions through AI connections, within their capacity; tests of connections",
    source_dir="completions",
    settings=CompletionsSettings,
    tables={
        CONNECTIONS_TABLE.logical_id: ("dynamodb:GetItem", "dynamodb:Query"),
        CAPACITY_TABLE.logical_id: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    },
    # decrypts credentials just before calling the provider, once per connection version per warm instance
    kms_actions=("kms:Decrypt",),
    assumes_provider_roles=True,
    publishes_events=True,
    streams_responses=True,
    memory_mb=1024,
    # API Gateway streams a response for up to 15 minutes; an answer may take all of it, streamed or not
    timeout_seconds=900,
)

DISCOVERY = Function(
    name="discovery",
    description="Persists the rate limits providers report into connections' discovered capacity",
    source_dir="discovery",
    settings=DiscoverySettings,
    # one transaction: the observation, and a check that its connection still exists
    tables={CONNECTIONS_TABLE.logical_id: ("dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")},
)

USAGE = Function(
    name="usage",
    description="Aggregates completions into hourly and daily usage statistics",
    source_dir="usage",
    settings=UsageSettings,
    # one transaction: the event's marker, the buckets, and a check that the connection has no tombstone
    tables={USAGE_TABLE.logical_id: ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")},
)

CAPACITY_SETTLEMENTS = Function(
    name="capacity-settlements",
    description="Writes the capacity settlements that completions could not write after their answers",
    source_dir="capacity_settlements",
    settings=CapacitySettlementsSettings,
    tables={CAPACITY_TABLE.logical_id: ("dynamodb:UpdateItem",)},
)

EVENT_OUTBOX = Function(
    name="event-outbox",
    description="Puts on the bus the events their publishers kept in the outbox while the bus failed",
    source_dir="event_outbox",
    settings=EventOutboxSettings,
    publishes_events=True,
    # a batch of ten messages, each one PutEvents of at most 2 s (vmx.wiring.event_outbox_consumer)
    timeout_seconds=30,
)

CONNECTION_REMAINS = Function(
    name="connection-remains",
    description="Removes a deleted connection's capacity counters, usage statistics and discovered capacity",
    source_dir="connection_remains",
    settings=ConnectionRemainsSettings,
    tables={
        CAPACITY_TABLE.logical_id: ("dynamodb:Query", "dynamodb:BatchWriteItem"),
        # PutItem: the tombstone that stops the usage consumer counting the connection again
        USAGE_TABLE.logical_id: ("dynamodb:Query", "dynamodb:PutItem", "dynamodb:BatchWriteItem"),
        CONNECTIONS_TABLE.logical_id: ("dynamodb:Query", "dynamodb:BatchWriteItem"),
    },
    timeout_seconds=60,
)

BEDROCK_QUOTAS = Function(
    name="bedrock-quotas",
    description="Reads Bedrock connections' quotas from Service Quotas, as their discovered capacity",
    source_dir="bedrock_quotas",
    settings=BedrockQuotasSettings,
    tables={CONNECTIONS_TABLE.logical_id: ("dynamodb:Scan",)},
    # quotas live in the connection's account: read with its role (or its stored keys, hence Decrypt)
    kms_actions=("kms:Decrypt",),
    assumes_provider_roles=True,
    publishes_events=True,
    timeout_seconds=120,
)

FUNCTIONS: tuple[Function, ...] = (
    AUTHORIZER,
    TENANCY,
    CONNECTIONS,
    COMPLETIONS,
    DISCOVERY,
    USAGE,
    CAPACITY_SETTLEMENTS,
    EVENT_OUTBOX,
    CONNECTION_REMAINS,
    BEDROCK_QUOTAS,
)
STREAMING_FUNCTIONS = frozenset(function.name for function in FUNCTIONS if function.streams_responses)

# Where the events the functions publish come from, and their kinds (vmx.events defines their details).
EVENT_SOURCE = "vmx.ai-connections"
# Names the bus to the functions that publish (publishes_events), in the stack and the local stack.
EVENT_BUS_ENV_VAR = "EVENT_BUS_NAME"

# A deleted connection's remains are removed this long after the delete: by then no completion can still reserve
# capacity on it (an instance keeps a connection it read for at most CONNECTION_CACHE_SECONDS, 60 s), so no new
# counter item appears after the removal.
CONNECTION_REMAINS_DELAY_SECONDS = 180

EVENT_QUEUES: tuple[EventQueue, ...] = (
    EventQueue("discovered-capacity", DISCOVERY.name, ("RateLimitsObserved",)),
    EventQueue("usage", USAGE.name, ("CompletionRecorded",)),
    EventQueue(
        "connection-remains",
        CONNECTION_REMAINS.name,
        ("ConnectionDeleted",),
        delivery_delay_seconds=CONNECTION_REMAINS_DELAY_SECONDS,
    ),
)

WORK_QUEUES: tuple[WorkQueue, ...] = (
    WorkQueue(
        "capacity-settlements",
        CAPACITY_SETTLEMENTS.name,
        senders=(COMPLETIONS.name,),
        url_env_var="CAPACITY_SETTLEMENTS_QUEUE_URL",
    ),
    # every function that publishes keeps there what the bus would not take (vmx.aws.event_outbox)
    WorkQueue(
        "event-outbox",
        EVENT_OUTBOX.name,
        senders=tuple(
            function.name for function in FUNCTIONS if function.publishes_events and function is not EVENT_OUTBOX
        ),
        url_env_var="EVENT_OUTBOX_QUEUE_URL",
        # it holds events exactly while the bus fails: about half an hour of retries (each after the queue's
        # visibility timeout) before a message is dead-lettered, with its alarm, for the operator to redrive
        max_receive_count=10,
    ),
)

SCHEDULES: tuple[Schedule, ...] = (Schedule("bedrock-quotas", BEDROCK_QUOTAS.name, "rate(6 hours)"),)

_WS = "/api/v1/workspaces/{workspaceId}"
_ENV = _WS + "/environments/{environmentId}"
_CONN = _ENV + "/ai-connections"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/workspaces", TENANCY.name),
    Route("POST", "/api/v1/workspaces", TENANCY.name),
    Route("GET", _WS, TENANCY.name),
    Route("DELETE", _WS, TENANCY.name),
    Route("GET", _WS + "/environments", TENANCY.name),
    Route("POST", _WS + "/environments", TENANCY.name),
    Route("GET", _ENV, TENANCY.name),
    Route("DELETE", _ENV, TENANCY.name),
    Route("GET", _WS + "/api-keys", TENANCY.name),
    Route("POST", _WS + "/api-keys", TENANCY.name),
    Route("GET", _WS + "/api-keys/{keyId}", TENANCY.name),
    Route("PATCH", _WS + "/api-keys/{keyId}", TENANCY.name),
    Route("DELETE", _WS + "/api-keys/{keyId}", TENANCY.name),
    Route("GET", "/api/v1/providers", CONNECTIONS.name),
    # the API's OpenAPI document (docs/openapi.json), for anyone: it holds nothing of a tenant
    Route("GET", "/api/v1/openapi.json", CONNECTIONS.name, authorized=False),
    Route("GET", _CONN, CONNECTIONS.name),
    Route("POST", _CONN, CONNECTIONS.name),
    Route("GET", _CONN + "/{connectionId}", CONNECTIONS.name),
    Route("PATCH", _CONN + "/{connectionId}", CONNECTIONS.name),
    Route("DELETE", _CONN + "/{connectionId}", CONNECTIONS.name),
    Route("GET", _CONN + "/{connectionId}/capacity", CONNECTIONS.name),
    Route("GET", _CONN + "/{connectionId}/usage", CONNECTIONS.name),
    # with the completions: they open the credentials and assume the role that completions do
    Route("POST", _CONN + "/test", COMPLETIONS.name),
    Route("POST", _CONN + "/{connectionId}/test", COMPLETIONS.name),
    Route("POST", _ENV + "/chat/completions", COMPLETIONS.name),
    Route("GET", _ENV + "/models", COMPLETIONS.name),
)

# How long API Gateway caches an authorizer decision: a revoked key may pass for at most this long.
AUTHORIZER_CACHE_SECONDS = 60

# The functions behind the API's routes: they are told the console's origin (CONSOLE_ORIGIN_ENV_VAR).
API_FUNCTIONS = frozenset(route.function for route in ROUTES)

# The functions that judge where a connection's baseUrl may point (their settings read BaseUrlSettings), and how
# they are told the API's own host name. The local stack sets it to its own address, and lets them reach
# providers on loopback, which no function may in AWS.
BASE_URL_CHECKERS = frozenset(function.name for function in FUNCTIONS if issubclass(function.settings, BaseUrlSettings))
OWN_API_HOSTS_ENV_VAR = "OWN_API_HOSTS"
ALLOW_LOOPBACK_ENV_VAR = "ALLOW_LOOPBACK_BASE_URLS"

# Names the credentials KMS key to the functions with kms_actions, in the stack and the local stack.
CREDENTIALS_KEY_ENV_VAR = "CREDENTIALS_KMS_KEY_ID"

# The web console: static files served exactly as they are in this folder (no build step; see
# docs/decisions.md), plus CONSOLE_CONFIG_FILE, which whatever serves them writes: {"apiUrl": "..."}.
CONSOLE_DIR = "console"
CONSOLE_CONFIG_FILE = "config.json"
# Tells the API functions which browser origin may call them (CORS); unset, no origin may.
CONSOLE_ORIGIN_ENV_VAR = "CONSOLE_ORIGIN"
# What that origin's pages send beyond CORS-safelisted headers: the API key, JSON bodies, conditional
# updates; and how long a browser may reuse a preflight's answer.
CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "If-Match")
CORS_MAX_AGE_SECONDS = 600


def console_content_security_policy(api_origin: str) -> str:
    """Everything from the console's own origin only, and requests to it and to the API: an injected
    script could neither load nor send anything elsewhere. `api_origin` is empty when the API is same-origin."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {api_origin}".rstrip(),
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )
