"""Each function's environment, computed from its spec by one function that the CDK stack and the local stack
both call (`environment_of`), so what a function is told cannot differ between AWS and a laptop.

No CDK here: `Resources` holds what a deployment calls the spec's tables, bus, queues and key, which are CDK tokens
in the stack and local names in the local stack.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from pydantic import AliasChoices, BaseModel

from infra.system import (
    ALLOW_LOOPBACK_ENV_VAR,
    API_FUNCTIONS,
    BASE_URL_CHECKERS,
    CONSOLE_ORIGIN_ENV_VAR,
    EVENT_BUS_ENV_VAR,
    OWN_API_HOSTS_ENV_VAR,
    TABLES,
    WORK_QUEUES,
    Function,
)

SERVICE_NAME = "vmx-ai-connections"
METRICS_NAMESPACE = "VmxAiConnections"
# One value for Powertools and for Lambda's log filter: if they differ, one silently drops the other's logs.
LOG_LEVEL = "INFO"
# What every function gets, in AWS and locally, whatever its spec. It comes last: no spec overrides it.
STANDARD_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    "LOG_LEVEL": LOG_LEVEL,
    # X-Ray must never hold a response body: creating an API key returns the key, once.
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
}
# What Lambda sets itself in every function, and the local stack sets in its instances in Lambda's place
# (local_stack.emulator.BASE_ENVIRONMENT): a settings class may read these without the spec giving them.
LAMBDA_SETS = frozenset({"AWS_REGION", "AWS_DEFAULT_REGION"})

_TABLES_BY_ID = {table.logical_id: table for table in TABLES}


@dataclass(frozen=True)
class Resources:
    """What a deployment calls the resources the spec describes."""

    # by system.Table.logical_id
    table_names: Mapping[str, str]
    event_bus_name: str
    # by system.WorkQueue.name
    queue_urls: Mapping[str, str]
    # CREDENTIALS_CIPHER and its key: kms and the key's ARN in AWS, sodium and the key itself locally
    cipher: Mapping[str, str]
    # the API's own host names, which no connection's baseUrl may name (vmx.settings.BaseUrlSettings)
    own_api_hosts: str
    # the console's browser origin, if any origin may call the API (vmx.settings.ConsoleOriginSettings)
    console_origin: str | None
    # providers on this machine: for the local stack, never in AWS
    allow_loopback_base_urls: bool = False


def environment_of(function: Function, resources: Resources) -> dict[str, str]:
    """What `function` is told: its tables, the cipher if it may use the key, the bus if it publishes, the queues
    it sends to, the console's origin if it serves routes, the API's own hosts if it judges base URLs; and the
    standard settings. Nothing of any other function's."""
    environment = {_TABLES_BY_ID[table_id].env_var: resources.table_names[table_id] for table_id in function.tables}
    if function.kms_actions:
        environment |= resources.cipher
    if function.publishes_events:
        environment[EVENT_BUS_ENV_VAR] = resources.event_bus_name
    environment |= {
        queue.url_env_var: resources.queue_urls[queue.name] for queue in WORK_QUEUES if function.name in queue.senders
    }
    if function.name in API_FUNCTIONS and resources.console_origin is not None:
        environment[CONSOLE_ORIGIN_ENV_VAR] = resources.console_origin
    if function.name in BASE_URL_CHECKERS:
        environment[OWN_API_HOSTS_ENV_VAR] = resources.own_api_hosts
        if resources.allow_loopback_base_urls:
            environment[ALLOW_LOOPBACK_ENV_VAR] = "true"
    return environment | STANDARD_ENVIRONMENT


class Setting(NamedTuple):
    """One field of a settings class, as the environment variables it is read from (the first one set wins)."""

    names: tuple[str, ...]
    required: bool


def settings_read(settings: type[BaseModel]) -> list[Setting]:
    """The environment variables a settings class reads: its fields' validation aliases."""
    read = []
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names: tuple[str, ...] = (alias,)
        elif isinstance(alias, AliasChoices) and all(isinstance(choice, str) for choice in alias.choices):
            names = tuple(str(choice) for choice in alias.choices)
        else:
            raise TypeError(f"{settings.__name__}.{name} is not read from a named environment variable")
        read.append(Setting(names, field.is_required()))
    return read
