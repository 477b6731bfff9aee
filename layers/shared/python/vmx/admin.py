"""Operator commands. `python -m vmx.admin bootstrap` creates the first workspace, environment and
platform-admin API key, against a deployed stack (`--stack-name`) or the tables named in the environment."""

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence

import boto3
from pydantic import BaseModel, SecretStr

from vmx import wiring
from vmx.settings import TenancySettings
from vmx.tenancy.models import EnvironmentCreate, Role, WorkspaceCreate

BOOTSTRAP_ACTOR = "bootstrap"
# Stack outputs that name what the command needs, mapped to the settings' environment variables.
_STACK_OUTPUTS = {
    "TenancyTableName": "TENANCY_TABLE_NAME",
    "ConnectionsTableName": "CONNECTIONS_TABLE_NAME",
    "EventBusName": "EVENT_BUS_NAME",
    "EventOutboxQueueUrl": "EVENT_OUTBOX_QUEUE_URL",
}
_logger = logging.getLogger("vmx.admin")


class Bootstrapped(BaseModel):
    workspace_id: str
    environment_id: str
    key_id: str
    api_key: SecretStr


class AlreadyBootstrapped(Exception):
    pass


def bootstrap(
    environ: Mapping[str, str], workspace_name: str = "Default", environment_name: str = "development"
) -> Bootstrapped:
    settings = TenancySettings.from_environ(environ)
    # bootstrapping deletes nothing, so publishes nothing: an event it could not publish would only be logged
    events = wiring.event_publisher(settings, _logger, metrics=None)
    service = wiring.tenancy_service(settings, events)
    tenancy = wiring.tenancy_repository(settings)
    if tenancy.list_workspaces(limit=1, next_token=None).items:
        raise AlreadyBootstrapped("workspaces already exist; create more keys with the API instead")
    workspace = service.add_workspace(WorkspaceCreate(name=workspace_name), created_by=BOOTSTRAP_ACTOR)
    environment = service.add_environment(
        workspace.workspace_id, EnvironmentCreate(name=environment_name), created_by=BOOTSTRAP_ACTOR
    )
    issued = service.issue_api_key(
        workspace.workspace_id,
        name="platform admin (bootstrap)",
        role=Role.ADMIN,
        environment_ids=None,
        platform_admin=True,
        created_by=BOOTSTRAP_ACTOR,
    )
    return Bootstrapped(
        workspace_id=workspace.workspace_id,
        environment_id=environment.environment_id,
        key_id=issued.key.key_id,
        api_key=issued.token,
    )


def stack_environment(stack_name: str, region: str | None) -> dict[str, str]:
    """The environment variables bootstrap needs, read from a deployed stack's outputs."""
    cloudformation = boto3.client("cloudformation", region_name=region)
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    missing = sorted(set(_STACK_OUTPUTS) - set(outputs))
    if missing:
        raise SystemExit(f"stack {stack_name} lacks the outputs {', '.join(missing)}; is it this project's stack?")
    environ = {variable: outputs[output] for output, variable in _STACK_OUTPUTS.items()}
    environ["AWS_REGION"] = cloudformation.meta.region_name
    if "ApiUrl" in outputs:
        environ["API_URL"] = outputs["ApiUrl"]
    return environ


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vmx.admin")
    commands = parser.add_subparsers(dest="command", required=True)
    boot = commands.add_parser("bootstrap", help="create the first workspace, environment and platform-admin key")
    boot.add_argument("--stack-name", help="read table names from this deployed stack's outputs")
    boot.add_argument("--region", help="AWS region of the stack (default: your AWS configuration)")
    boot.add_argument("--workspace-name", default="Default")
    boot.add_argument("--environment-name", default="development")
    args = parser.parse_args(argv)

    environ = dict(os.environ)
    if args.stack_name:
        environ.update(stack_environment(args.stack_name, args.region))
    try:
        result = bootstrap(environ, args.workspace_name, args.environment_name)
    except AlreadyBootstrapped as exc:
        print(f"bootstrap refused: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "baseUrl": environ.get("API_URL"),
                "apiKey": result.api_key.get_secret_value(),
                "keyId": result.key_id,
                "workspaceId": result.workspace_id,
                "environmentId": result.environment_id,
            },
            indent=2,
        )
    )
    print("Keep the apiKey safe: it is shown only this once.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
