"""Per admitted chat completion: the AWS calls it costs, by service and operation, and the time the gateway
adds on top of a zero-latency provider.

Everything runs in one process: moto (`mock_aws`), the local stack's API Gateway emulation with the
authorizer, the real handlers and adapters, KMS envelope encryption for the credentials, and a loopback
OpenAI-compatible provider that answers at once. Prints a markdown summary.

    uv run --frozen python -m bench.completion_gateway [--requests N] [--warmup W]
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import urllib3
from botocore.handlers import BUILTIN_HANDLERS
from botocore.model import OperationModel
from moto import mock_aws

from infra.system import AUTHORIZER, CREDENTIALS_KEY_ENV_VAR, FUNCTIONS, ROUTES, TABLES
from local_stack.emulator import NAME_PREFIX, create_table
from local_stack.gateway import ApiGateway, HttpRequest
from local_stack.lambda_runtime import LambdaRuntime, load_handler
from tests.loopback_providers import LoopbackProvider, loopback_provider
from vmx import wiring
from vmx.settings import TenancySettings
from vmx.tenancy.models import EnvironmentCreate, Role, WorkspaceCreate

SOURCE_IP = "198.51.100.7"
MODEL = "gpt-4o-mini"
PROMPT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 16}
# High enough never to refuse, so every measured request is admitted.
NEVER_FULL = {"requests": 10**9, "tokens": 10**12}
CASES = {
    "minute + hour": [{"period": "minute", **NEVER_FULL}, {"period": "hour", **NEVER_FULL}],
    "+ per-IP day requests": [
        {"period": "minute", **NEVER_FULL},
        {"period": "hour", **NEVER_FULL},
        {"period": "day", "dimension": "source-ip", "requests": 10**9},
    ],
    # per-IP tokens are counted on the IP's own item, so they cost one more reconciling write
    "+ per-IP day requests and tokens": [
        {"period": "minute", **NEVER_FULL},
        {"period": "hour", **NEVER_FULL},
        {"period": "day", "dimension": "source-ip", **NEVER_FULL},
    ],
}
# Shown even when never called: a zero here is a finding.
EXPECTED_ROWS = [("completions", "KMS", "Decrypt", ""), ("completions", "STS", "AssumeRole", "")]

# function, service, operation, table
Call = tuple[str, str, str, str]


class AwsCalls:
    """Counts and times AWS API calls through botocore's event system, by the function making them.

    Its handlers join botocore's built-in ones, so every session created afterwards has them: boto3's default
    session and each of pynamodb's own botocore sessions alike. `before-parameter-build` fires once per API
    call (retries excluded) with the call's own parameters, `after-call` once its response is parsed.
    """

    def __init__(self) -> None:
        self.function = "setup"
        self.counts: Counter[Call] = Counter()
        self.nanoseconds = 0
        self._started = 0

    def _before(self, model: OperationModel, params: dict[str, Any], **_: Any) -> None:
        table = str(params.get("TableName", "")).removeprefix(NAME_PREFIX).removesuffix("Table")
        self.counts[(self.function, model.service_model.service_id, model.name, table)] += 1
        self._started = time.perf_counter_ns()

    def _after(self, **_: Any) -> None:
        self.nanoseconds += time.perf_counter_ns() - self._started

    @contextlib.contextmanager
    def installed(self) -> Iterator["AwsCalls"]:
        entries = [("before-parameter-build", self._before), ("after-call", self._after)]
        BUILTIN_HANDLERS.extend(entries)
        try:
            yield self
        finally:
            for entry in entries:
                BUILTIN_HANDLERS.remove(entry)


@dataclass(frozen=True)
class CaseResult:
    calls_per_request: dict[Call, float]
    # per measured request: through the gateway, and the part of it spent in AWS SDK calls
    total_ms: list[float]
    aws_ms: list[float]
    # KMS Decrypt calls during warm-up: the credentials cache filling
    warmup_decrypts: int


def configure_environment() -> None:
    """As tests/conftest.py, but with KMS envelope encryption for the credentials."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "vmx-ai-connections",
            "POWERTOOLS_METRICS_NAMESPACE": "VmxAiConnections",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "CREDENTIALS_CIPHER": "kms",
        }
    )
    dynamodb = boto3.client("dynamodb")
    os.environ.update({table.env_var: create_table(dynamodb, table) for table in TABLES})
    os.environ[CREDENTIALS_KEY_ENV_VAR] = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    os.environ["EVENT_BUS_NAME"] = (
        boto3.client("events").create_event_bus(Name="vmx-bench-events")["EventBusArn"].split("/")[-1]
    )


def attributed_gateway(aws: AwsCalls) -> ApiGateway:
    """The in-process gateway of tests/functional/api.py, telling `aws` which function is running."""
    runtime = LambdaRuntime(FUNCTIONS, {function.name: load_handler(function) for function in FUNCTIONS})

    def invoke(name: str, event: dict[str, Any]) -> Any:
        aws.function = name
        return runtime.invoke(name, event)

    return ApiGateway(ROUTES, invoke, AUTHORIZER.name)


def post(gateway: ApiGateway, path: str, token: str, body: dict[str, Any]) -> tuple[int, str]:
    headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")]
    response = gateway.handle(HttpRequest("POST", path, headers, json.dumps(body).encode(), source_ip=SOURCE_IP))
    return response.status, response.body.decode()


def environment_path() -> tuple[str, str]:
    """A workspace with an environment and an admin key: the environment's API path and the key."""
    tenancy = wiring.tenancy_service(TenancySettings.from_environ(os.environ))
    workspace = tenancy.add_workspace(WorkspaceCreate(name="Bench"), created_by="bench")
    environment = tenancy.add_environment(workspace.workspace_id, EnvironmentCreate(name="bench"), created_by="bench")
    issued = tenancy.issue_api_key(
        workspace.workspace_id,
        name="bench",
        role=Role.ADMIN,
        environment_ids=None,
        platform_admin=False,
        created_by="bench",
    )
    path = f"/api/v1/workspaces/{workspace.workspace_id}/environments/{environment.environment_id}"
    return path, issued.token.get_secret_value()


def run_case(
    gateway: ApiGateway,
    aws: AwsCalls,
    provider: LoopbackProvider,
    name: str,
    capacity: list[dict[str, Any]],
    requests: int,
    warmup: int,
) -> CaseResult:
    path, token = environment_path()
    connection_name = name.replace(" ", "").replace("+", "-").lower()
    config = {"apiKey": provider.api_key, "baseUrl": provider.base_url}
    body = {"name": connection_name, "provider": "openai", "config": config, "capacity": capacity}
    status, text = post(gateway, path + "/ai-connections", token, body)
    assert status == 201, text

    completion = {**PROMPT, "model": f"{connection_name}/{MODEL}"}
    headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")]
    request = HttpRequest("POST", path + "/chat/completions", headers, json.dumps(completion).encode(), SOURCE_IP)
    total_ms: list[float] = []
    aws_ms: list[float] = []
    warmup_decrypts = 0
    for index in range(warmup + requests):
        if index == warmup:
            warmup_decrypts = aws.counts[("completions", "KMS", "Decrypt", "")]
            aws.counts.clear()
        aws.nanoseconds = 0
        started = time.perf_counter_ns()
        response = gateway.handle(request)
        elapsed = time.perf_counter_ns() - started
        assert response.status == 200, response.body.decode()
        if index >= warmup:
            total_ms.append(elapsed / 1e6)
            aws_ms.append(aws.nanoseconds / 1e6)
    per_request = {call: count / requests for call, count in aws.counts.items()}
    return CaseResult(per_request, total_ms, aws_ms, warmup_decrypts)


def loopback_round_trips(provider: LoopbackProvider, requests: int, warmup: int) -> list[float]:
    """The provider alone: the same call straight to the loopback with urllib3, as the gateway makes it."""
    http = urllib3.PoolManager()
    headers = {"Authorization": f"Bearer {provider.api_key}", "Content-Type": "application/json"}
    payload = json.dumps(PROMPT).encode()
    milliseconds: list[float] = []
    for index in range(warmup + requests):
        started = time.perf_counter_ns()
        response = http.request("POST", provider.base_url + "/chat/completions", body=payload, headers=headers)
        elapsed = time.perf_counter_ns() - started
        assert response.status == 200, response.data
        if index >= warmup:
            milliseconds.append(elapsed / 1e6)
    return milliseconds


def summary(samples: list[float]) -> str:
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return f"{statistics.median(samples):.2f} | {p99:.2f} | {min(samples):.2f} | {max(samples):.2f}"


def report(results: dict[str, CaseResult], loopback: list[float], requests: int, warmup: int) -> str:
    names = list(results)
    calls = sorted({call for result in results.values() for call in result.calls_per_request} | set(EXPECTED_ROWS))
    lines = [
        f"{requests} measured requests per case, after {warmup} warm-up (the decrypted-credentials cache is warm).",
        "",
        "AWS calls per admitted request:",
        "",
        "| Function | Service | Operation | Table | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---:|" * len(names),
    ]
    for call in calls:
        counts = " | ".join(f"{results[name].calls_per_request.get(call, 0.0):.2f}" for name in names)
        lines.append(f"| {' | '.join(call)} | {counts} |")
    totals = " | ".join(f"**{sum(results[name].calls_per_request.values()):.2f}**" for name in names)
    decrypts = ", ".join(f"{name}: {results[name].warmup_decrypts}" for name in names)
    lines += [
        f"| **all** | | | | {totals} |",
        "",
        f"KMS Decrypt during warm-up ({decrypts}).",
        "",
        "Time per request, ms:",
        "",
    ]
    lines += ["| | median | p99 | min | max |", "|---|---:|---:|---:|---:|"]
    provider = statistics.median(loopback)
    lines.append(f"| loopback provider alone (urllib3 round trip) | {summary(loopback)} |")
    for name in names:
        result = results[name]
        added = [total - provider for total in result.total_ms]
        outside = [total - aws - provider for total, aws in zip(result.total_ms, result.aws_ms, strict=True)]
        lines += [
            f"| through the gateway, {name} | {summary(result.total_ms)} |",
            f"| **gateway added**, {name} | {summary(added)} |",
            f"| of which in AWS SDK calls (botocore + moto), {name} | {summary(result.aws_ms)} |",
            f"| of which outside them, {name} | {summary(outside)} |",
        ]
    lines += [
        "",
        "Gateway added = a request's time through the gateway minus the loopback's median round trip: the",
        "authorizer and the completions function (routing, validation, capacity, credentials, the provider",
        "call's client side, logs and metrics) and the API Gateway emulation. moto runs in-process, so AWS",
        "calls cost no network time here, only botocore's work and moto's: the figure is the gateway's own",
        "CPU cost plus the emulator's. Real DynamoDB adds a few ms per call, and these calls run in sequence.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.completion_gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="measured requests per case (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up requests per case (default 50)")
    args = parser.parse_args(argv)
    if args.requests < 2 or args.warmup < 1:
        parser.error("--requests must be at least 2 and --warmup at least 1")

    # The authorizer records no business metric, as expected (pyproject's pytest filter says the same).
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    aws = AwsCalls()
    # The functions' JSON logs and metrics go to stdout, as in Lambda; here they are written, then dropped.
    with (
        aws.installed(),
        mock_aws(),
        loopback_provider("openai") as provider,
        Path(os.devnull).open("w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):
        configure_environment()
        gateway = attributed_gateway(aws)
        results = {
            name: run_case(gateway, aws, provider, name, capacity, args.requests, args.warmup)
            for name, capacity in CASES.items()
        }
        loopback = loopback_round_trips(provider, args.requests, args.warmup)
    if not results[next(iter(CASES))].calls_per_request.get(("authorizer", "DynamoDB", "GetItem", "Tenancy")):
        sys.exit("counting missed the authorizer's DynamoDB GetItem (pynamodb's botocore session)")
    print(report(results, loopback, args.requests, args.warmup))


if __name__ == "__main__":
    main()
