"""The AWS side of the local stack: moto's server in-process, and the tables, bus, queues and key on it."""

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from infra.environments import Resources, environment_of, settings_read
from infra.system import CREDENTIALS_KEY_ENV_VAR, EventQueue, Function, Table, WorkQueue
from local_stack.event_delivery import LocalQueue, provision_event_queues
from local_stack.lambda_runtime import REGION
from local_stack.moto_server import MotoServer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_kms.client import KMSClient

NAME_PREFIX = "vmx-local-"
EVENT_BUS_NAME = f"{NAME_PREFIX}events"

# What points the SDK at moto, in the local stack's own process and in every function's: moto's credentials and
# region where Lambda gives a function its role's and its own (infra.environments.LAMBDA_SETS), and no X-Ray
# daemon to send traces to.
BASE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}
# A developer's real profile or session must never reach moto, nor a real account by mistake.
CLEARED_ENVIRONMENT = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN")
# What a function's instances take from the local stack's own environment: what any process needs to run.
PROCESS_VARIABLES = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ", "TMPDIR")


def start_moto(host: str = "127.0.0.1", port: int = 0) -> tuple[MotoServer, str]:
    """Starts moto's server on a thread and returns it with its endpoint URL."""
    # werkzeug logs every request at INFO; the gateway's access log is the one that matters.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = MotoServer(host, port)
    server.start()
    return server, server.endpoint_url


def point_environment_at(endpoint_url: str) -> None:
    """Sets the process environment so every boto3 and pynamodb client talks to moto."""
    for name in CLEARED_ENVIRONMENT:
        os.environ.pop(name, None)
    os.environ.update(BASE_ENVIRONMENT)
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url


def table_name(table: Table) -> str:
    return NAME_PREFIX + table.logical_id


def create_table(client: "DynamoDBClient", table: Table) -> str:
    """Creates one table as `infra/system.py` describes it: string keys, on demand, ALL projections."""
    name = table_name(table)
    key_names = {table.partition_key, table.sort_key}
    global_indexes: list[Any] = []
    local_indexes: list[Any] = []
    for index in table.indexes:
        key_names |= {index.partition_key, index.sort_key}
        (local_indexes if index.local else global_indexes).append(
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        )
    optional: dict[str, Any] = {}
    if global_indexes:
        optional["GlobalSecondaryIndexes"] = global_indexes
    if local_indexes:
        optional["LocalSecondaryIndexes"] = local_indexes
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in sorted(key_names)],
        KeySchema=[
            {"AttributeName": table.partition_key, "KeyType": "HASH"},
            {"AttributeName": table.sort_key, "KeyType": "RANGE"},
        ],
        **optional,
    )
    if table.ttl_attribute:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )
    return name


@dataclass(frozen=True)
class Provisioned:
    # by Table.logical_id
    table_names: dict[str, str]
    event_bus_name: str
    credentials_key_id: str
    queues: list[LocalQueue]

    def resources(self, cipher: Mapping[str, str], own_api_hosts: str, console_origin: str | None) -> Resources:
        """What the local stack calls the spec's resources. Credentials are encrypted with `cipher` (libsodium,
        local_stack.state), but the functions that may use the KMS key in AWS are told its id here too."""
        return Resources(
            table_names=self.table_names,
            event_bus_name=self.event_bus_name,
            queue_urls={queue.spec.name: queue.url for queue in self.queues if isinstance(queue.spec, WorkQueue)},
            cipher={**cipher, CREDENTIALS_KEY_ENV_VAR: self.credentials_key_id},
            own_api_hosts=own_api_hosts,
            console_origin=console_origin,
            allow_loopback_base_urls=True,
        )


def function_environment(
    function: Function, resources: Resources, endpoint_url: str, environ: Mapping[str, str]
) -> dict[str, str]:
    """A function's environment in the local stack: its own (infra.environments.environment_of), what Lambda sets
    in AWS, pointed at moto, and from the local stack's `environ` only what any process needs and the optional
    settings the function reads (so `CONNECTION_CACHE_SECONDS=0 make run` works). Nothing of another function's."""
    optional = [name for setting in settings_read(function.settings) if not setting.required for name in setting.names]
    inherited = {name: environ[name] for name in (*PROCESS_VARIABLES, *optional) if name in environ}
    return inherited | BASE_ENVIRONMENT | {"AWS_ENDPOINT_URL": endpoint_url} | environment_of(function, resources)


def moto_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=BASE_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=BASE_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
    )


def provision(
    tables: Iterable[Table],
    event_queues: Iterable[EventQueue],
    endpoint_url: str,
    work_queues: Iterable[WorkQueue] = (),
) -> Provisioned:
    """Creates the tables, the event bus with the rules and queues of `event_queues`, the `work_queues`, and the
    KMS key on moto."""
    dynamodb: DynamoDBClient = moto_client("dynamodb", endpoint_url)
    table_names = {table.logical_id: create_table(dynamodb, table) for table in tables}
    events: EventBridgeClient = moto_client("events", endpoint_url)
    events.create_event_bus(Name=EVENT_BUS_NAME)
    queues = provision_event_queues(
        moto_client("sqs", endpoint_url),
        events,
        [*event_queues, *work_queues],
        bus_name=EVENT_BUS_NAME,
        name_prefix=NAME_PREFIX,
    )
    kms: KMSClient = moto_client("kms", endpoint_url)
    key_id = kms.create_key(Description="vmx-local credentials")["KeyMetadata"]["KeyId"]
    return Provisioned(table_names, EVENT_BUS_NAME, key_id, queues)
