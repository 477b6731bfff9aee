"""Per admitted chat completion, non-streamed and streamed: the AWS calls it costs before the first byte, during
the body and after the last byte, and the time the gateway adds on top of a zero-latency provider.

Everything runs in one process: moto (`mock_aws`), the local stack's API Gateway emulation with the
authorizer, the real handlers and adapters, KMS envelope encryption for the credentials, and a loopback
OpenAI-compatible provider that answers at once. Prints a markdown summary.

    uv run --frozen python -m bench.completion_gateway [--requests N] [--warmup W]
"""

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import urllib3
from botocore.handlers import BUILTIN_HANDLERS
from botocore.model import OperationModel
from moto import mock_aws

from infra.system import AUTHORIZER, CREDENTIALS_KEY_ENV_VAR, FUNCTIONS, ROUTES, TABLES, WORK_QUEUES
from local_stack.emulator import NAME_PREFIX, create_table
from local_stack.gateway import ApiGateway, HttpRequest
from local_stack.lambda_runtime import LambdaRuntime, load_handler
from tests.event_fakes import InMemoryEventPublisher
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
    # minute + hour shared by priority classes: the bench's key has no class, so it counts in the default one
    "minute + hour, priority classes": [{"period": "minute", **NEVER_FULL}, {"period": "hour", **NEVER_FULL}],
}
PRIORITIZATION = {
    "classes": [{"name": "production", "guaranteedPercent": 60}, {"name": "batch", "maximumPercent": 40}],
    "defaultClass": "production",
}
# The request body's "stream", by the name the report gives it.
MODES = {"non-streamed": False, "streamed": True}

SETUP = "setup"
BEFORE = "before the first byte"
BODY = "during the body"
AFTER = "after the last byte"
PHASES = (BEFORE, BODY, AFTER)

# phase, function, service, operation, table
Call = tuple[str, str, str, str, str]
# Shown even when never called: a zero here is a finding.
EXPECTED_ROWS: list[Call] = [
    (BEFORE, "authorizer", "DynamoDB", "GetItem", "Tenancy"),
    (BEFORE, "completions", "DynamoDB", "GetItem", "Connections"),
    (BEFORE, "completions", "KMS", "Decrypt", ""),
    (BEFORE, "completions", "STS", "AssumeRole", ""),
]


class AwsCalls:
    """Counts and times AWS API calls through botocore's event system, by the phase of the exchange and the
    function making them.

    Its handlers join botocore's built-in ones, so every session created afterwards has them: boto3's default
    session and each of pynamodb's own botocore sessions alike. `before-parameter-build` fires once per API
    call (retries excluded) with the call's own parameters, `after-call` once its response is parsed.
    """

    def __init__(self) -> None:
        self.function = SETUP
        self.phase = SETUP
        self.counts: Counter[Call] = Counter()
        # time inside the calls, by phase
        self.nanoseconds: Counter[str] = Counter()
        self._started = 0

    def _before(self, model: OperationModel, params: dict[str, Any], **_: Any) -> None:
        table = str(params.get("TableName", "")).removeprefix(NAME_PREFIX).removesuffix("Table")
        self.counts[(self.phase, self.function, model.service_model.service_id, model.name, table)] += 1
        self._started = time.perf_counter_ns()

    def _after(self, **_: Any) -> None:
        self.nanoseconds[self.phase] += time.perf_counter_ns() - self._started

    def take(self) -> Counter[Call]:
        """The calls counted so far, and a fresh count."""
        counts, self.counts = self.counts, Counter()
        return counts

    @contextlib.contextmanager
    def installed(self) -> Iterator["AwsCalls"]:
        entries = [("before-parameter-build", self._before), ("after-call", self._after)]
        BUILTIN_HANDLERS.extend(entries)
        try:
            yield self
        finally:
            for entry in entries:
                BUILTIN_HANDLERS.remove(entry)


class FirstContent:
    """Fed a chat completion stream's bytes as they arrive, tells when the first server-sent event carrying
    content (a delta with text) has come."""

    def __init__(self) -> None:
        self._pending = b""

    def seen_in(self, piece: bytes) -> bool:
        self._pending += piece.replace(b"\r\n", b"\n")
        *events, self._pending = self._pending.split(b"\n\n")
        return any(_carries_content(event) for event in events)


def _carries_content(event: bytes) -> bool:
    for line in event.split(b"\n"):
        data = line.removeprefix(b"data:").strip()
        if line.startswith(b"data:") and data != b"[DONE]":
            choices = json.loads(data).get("choices") or []
            if any((choice.get("delta") or {}).get("content") for choice in choices):
                return True
    return False


class ProviderConnections(logging.Handler):
    """Counts the TCP connections urllib3 opens to one port, from the debug line it logs for each."""

    def __init__(self, port: int) -> None:
        super().__init__(logging.DEBUG)
        self._port = str(port)
        self.opened = 0

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if str(record.msg).startswith("Starting new HTTP") and args and str(args[-1]) == self._port:
            self.opened += 1

    @contextlib.contextmanager
    def installed(self) -> Iterator["ProviderConnections"]:
        log = logging.getLogger("urllib3.connectionpool")
        level, propagate = log.level, log.propagate
        log.addHandler(self)
        log.setLevel(logging.DEBUG)
        log.propagate = False
        try:
            yield self
        finally:
            log.removeHandler(self)
            log.setLevel(level)
            log.propagate = propagate


@contextlib.contextmanager
def connection_resets_dropped() -> Iterator[None]:
    """The loopback provider's server prints a traceback for each connection reset under it: the gateway closes a
    stream's connection after its end (the report counts those connections). Everything else written to stderr
    meanwhile is written out at the end."""
    separator = "-" * 40 + "\n"
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    finally:
        kept = [
            block
            for block in captured.getvalue().split(separator)
            if block.strip()
            and not ("Exception occurred during processing" in block and "ConnectionResetError" in block)
        ]
        sys.stderr.write("".join(kept))


@dataclass(frozen=True)
class Sample:
    """One request through the gateway, in ms from the moment it was sent."""

    # the first content piece of a stream; the whole answer otherwise
    first_content_ms: float
    last_byte_ms: float
    # the function's work after the last byte (the body's `finish()`): the reconcile and the events
    after_ms: float
    # of the above, the time inside AWS SDK calls
    aws_to_first_byte_ms: float
    aws_to_last_byte_ms: float


@dataclass(frozen=True)
class ModeResult:
    calls_per_request: dict[Call, float]
    # TCP connections the completions function opened to the provider, per request
    provider_connections: float
    samples: list[Sample]
    # KMS Decrypt calls during warm-up: the credentials cache filling
    warmup_decrypts: int


@dataclass(frozen=True)
class CaseResult:
    modes: dict[str, ModeResult]
    # the authorizer's reads while the connection was created: proof that pynamodb's sessions are counted
    setup_authorizer_reads: int


def configure_environment() -> None:
    """As tests/conftest.py, but with KMS envelope encryption for the credentials and the connection cache at
    its default, as a deployed function has it."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "CONNECTION_CACHE_SECONDS"):
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
    sqs = boto3.client("sqs")
    os.environ.update(
        {queue.url_env_var: sqs.create_queue(QueueName=f"vmx-bench-{queue.name}")["QueueUrl"] for queue in WORK_QUEUES}
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
    tenancy = wiring.tenancy_service(TenancySettings.from_environ(os.environ), InMemoryEventPublisher())
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


def send(gateway: ApiGateway, aws: AwsCalls, request: HttpRequest, stream: bool) -> Sample:
    """One completion through the gateway, read as a client reads it, then the function's work after it."""
    aws.nanoseconds.clear()
    aws.phase = BEFORE
    started = time.perf_counter_ns()
    response = gateway.handle(request)
    assert response.status == 200, response.body.decode()
    assert response.stream is not None and response.finish is not None, "the completion was not streamed"
    content = FirstContent()
    first_content = 0
    received = [response.body]
    for piece in response.stream:
        # the calls made while the first piece was produced were before the first byte
        aws.phase = BODY
        received.append(piece)
        if stream and not first_content and content.seen_in(piece):
            first_content = time.perf_counter_ns()
    last_byte = time.perf_counter_ns()
    aws_to_first_byte, aws_to_last_byte = aws.nanoseconds[BEFORE], aws.nanoseconds[BEFORE] + aws.nanoseconds[BODY]
    aws.phase = AFTER
    response.finish()
    finished = time.perf_counter_ns()
    aws.phase = SETUP
    body = b"".join(received)
    if stream:
        assert first_content and body.endswith(b"data: [DONE]\n\n"), body
    else:
        assert json.loads(body)["choices"][0]["message"]["content"], body
    return Sample(
        first_content_ms=((first_content or last_byte) - started) / 1e6,
        last_byte_ms=(last_byte - started) / 1e6,
        after_ms=(finished - last_byte) / 1e6,
        aws_to_first_byte_ms=aws_to_first_byte / 1e6,
        aws_to_last_byte_ms=aws_to_last_byte / 1e6,
    )


def run_case(
    gateway: ApiGateway,
    aws: AwsCalls,
    provider: LoopbackProvider,
    connections: ProviderConnections,
    name: str,
    capacity: list[dict[str, Any]],
    requests: int,
    warmup: int,
) -> CaseResult:
    path, token = environment_path()
    connection_name = name.replace(" ", "").replace("+", "-").lower()
    config = {"apiKey": provider.api_key, "baseUrl": provider.base_url}
    body = {"name": connection_name, "provider": "openai", "config": config, "capacity": capacity}
    if "priority classes" in name:
        body["prioritization"] = PRIORITIZATION
    aws.take()
    status, text = post(gateway, path + "/ai-connections", token, body)
    assert status == 201, text
    setup = aws.take()

    headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")]
    modes: dict[str, ModeResult] = {}
    for mode, stream in MODES.items():
        completion = {**PROMPT, "model": f"{connection_name}/{MODEL}", "stream": stream}
        request = HttpRequest("POST", path + "/chat/completions", headers, json.dumps(completion).encode(), SOURCE_IP)
        samples = [send(gateway, aws, request, stream) for _ in range(warmup)]
        warmup_decrypts = aws.take()[(BEFORE, "completions", "KMS", "Decrypt", "")]
        opened = connections.opened
        samples = [send(gateway, aws, request, stream) for _ in range(requests)]
        per_request = {call: count / requests for call, count in aws.take().items()}
        modes[mode] = ModeResult(per_request, (connections.opened - opened) / requests, samples, warmup_decrypts)
    return CaseResult(modes, setup[(SETUP, "authorizer", "DynamoDB", "GetItem", "Tenancy")])


@dataclass(frozen=True)
class ProviderAlone:
    """The loopback provider's own times, in ms: a whole answer, and a stream's first content piece."""

    round_trip_ms: list[float]
    first_content_ms: list[float]


def provider_alone(provider: LoopbackProvider, requests: int, warmup: int) -> ProviderAlone:
    """The same calls straight to the loopback with urllib3, as the gateway makes them."""
    http = urllib3.PoolManager()
    url = provider.base_url + "/chat/completions"
    headers = {"Authorization": f"Bearer {provider.api_key}", "Content-Type": "application/json"}
    round_trips: list[float] = []
    for _ in range(warmup + requests):
        started = time.perf_counter_ns()
        response = http.request("POST", url, body=json.dumps(PROMPT).encode(), headers=headers)
        round_trips.append((time.perf_counter_ns() - started) / 1e6)
        assert response.status == 200, response.data
    first_pieces: list[float] = []
    payload = json.dumps({**PROMPT, "stream": True}).encode()
    for _ in range(warmup + requests):
        started = time.perf_counter_ns()
        response = http.request("POST", url, body=payload, headers=headers, preload_content=False)
        assert response.status == 200, response.data
        content, first = FirstContent(), 0
        for piece in response.read_chunked():
            if not first and content.seen_in(piece):
                first = time.perf_counter_ns()
        response.release_conn()
        assert first, "the provider's stream carried no content"
        first_pieces.append((first - started) / 1e6)
    return ProviderAlone(round_trips[warmup:], first_pieces[warmup:])


def summary(samples: Iterable[float]) -> str:
    values = list(samples)
    p99 = statistics.quantiles(values, n=100, method="inclusive")[98]
    return f"{statistics.median(values):.2f} | {p99:.2f} | {min(values):.2f} | {max(values):.2f}"


def count(value: float) -> str:
    """Two decimals; three for a call made by fewer than one request in a hundred (a cache expiring)."""
    return f"{value:.3f}" if 0 < value < 0.005 else f"{value:.2f}"


def calls_table(results: dict[str, CaseResult], mode: str) -> list[str]:
    names = list(results)
    per_case = {name: results[name].modes[mode].calls_per_request for name in names}
    calls = {call for calls in per_case.values() for call in calls} | set(EXPECTED_ROWS)
    lines = [
        "| Phase | Function | Service | Operation | Table | " + " | ".join(names) + " |",
        "|---|---|---|---|---|" + "---:|" * len(names),
    ]
    for phase in PHASES:
        for call in sorted(call for call in calls if call[0] == phase):
            lines.append(
                f"| {' | '.join(call)} | {' | '.join(count(per_case[name].get(call, 0.0)) for name in names)} |"
            )
        totals = (sum(n for call, n in per_case[name].items() if call[0] == phase) for name in names)
        lines.append(f"| **{phase}** | | | | | {' | '.join(f'**{count(total)}**' for total in totals)} |")
    totals = (sum(per_case[name].values()) for name in names)
    lines.append(f"| **all** | | | | | {' | '.join(f'**{count(total)}**' for total in totals)} |")
    return lines


def times_table(results: dict[str, CaseResult], alone: ProviderAlone) -> list[str]:
    round_trip = statistics.median(alone.round_trip_ms)
    first_piece = statistics.median(alone.first_content_ms)
    lines = [
        "| | median | p99 | min | max |",
        "|---|---:|---:|---:|---:|",
        f"| loopback provider alone: whole answer (urllib3 round trip) | {summary(alone.round_trip_ms)} |",
        f"| loopback provider alone: first content piece of a stream (urllib3) | {summary(alone.first_content_ms)} |",
    ]
    for name, result in results.items():
        whole = result.modes["non-streamed"].samples
        streamed = result.modes["streamed"].samples
        lines += [
            f"| {name}, non-streamed: to the last byte | {summary(s.last_byte_ms for s in whole)} |",
            f"| {name}, non-streamed: **gateway added** | {summary(s.last_byte_ms - round_trip for s in whole)} |",
            f"| {name}, non-streamed: of which in AWS SDK calls | {summary(s.aws_to_last_byte_ms for s in whole)} |",
            f"| {name}, non-streamed: of which outside them | "
            f"{summary(s.last_byte_ms - round_trip - s.aws_to_last_byte_ms for s in whole)} |",
            f"| {name}, non-streamed: after the last byte | {summary(s.after_ms for s in whole)} |",
            f"| {name}, streamed: to the first content piece | {summary(s.first_content_ms for s in streamed)} |",
            f"| {name}, streamed: **gateway added to the first piece** | "
            f"{summary(s.first_content_ms - first_piece for s in streamed)} |",
            f"| {name}, streamed: of which in AWS SDK calls | {summary(s.aws_to_first_byte_ms for s in streamed)} |",
            f"| {name}, streamed: of which outside them | "
            f"{summary(s.first_content_ms - first_piece - s.aws_to_first_byte_ms for s in streamed)} |",
            f"| {name}, streamed: to the last byte | {summary(s.last_byte_ms for s in streamed)} |",
            f"| {name}, streamed: after the last byte | {summary(s.after_ms for s in streamed)} |",
        ]
    return lines


def report(results: dict[str, CaseResult], alone: ProviderAlone, requests: int, warmup: int) -> str:
    decrypts = "; ".join(
        f"{name}: " + ", ".join(f"{mode} {result.modes[mode].warmup_decrypts}" for mode in MODES)
        for name, result in results.items()
    )
    lines = [
        f"{requests} measured requests per case and mode, after {warmup} warm-up: the authorizer's cache (60 s),",
        "the connection cache (5 s) and the decrypted-credentials cache are warm, as in a warm container.",
        "",
    ]
    for mode, stream in MODES.items():
        lines += [f'AWS calls per admitted request, {mode} (`"stream": {json.dumps(stream)}`):', ""]
        lines += [*calls_table(results, mode), ""]
    opened = "; ".join(
        f"{name}: " + ", ".join(f"{mode} {count(result.modes[mode].provider_connections)}" for mode in MODES)
        for name, result in results.items()
    )
    lines += [
        f"New TCP connections to the provider per request ({opened}).",
        "",
        f"KMS Decrypt during warm-up ({decrypts}).",
        "",
        "Time per request, ms:",
        "",
        *times_table(results, alone),
        "",
        "Gateway added = a request's time through the gateway minus the loopback's median time for the same: the",
        "whole answer when not streamed, the first content piece when streamed. It covers the authorizer (when",
        "not cached) and the completions function (routing, validation, capacity, credentials, the provider",
        "call's client side, logs and metrics) and the API Gateway emulation. After the last byte the client has",
        "its answer; that work (reconcile, events) only keeps the instance busy. moto runs in-process, so AWS",
        "calls cost no network time here, only botocore's work and moto's: the figure is the gateway's own CPU",
        "cost plus the emulator's. Real DynamoDB adds a few ms per call, and these calls run in sequence.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.completion_gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="measured requests per case and mode (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up requests per case and mode (default 30)")
    parser.add_argument(
        "--connection-cache-seconds",
        type=float,
        help="CONNECTION_CACHE_SECONDS for the run (default: the setting's own, as deployed); a test that must "
        "count no refresh on a slow machine sets it high",
    )
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
        connection_resets_dropped(),
        loopback_provider("openai") as provider,
        ProviderConnections(urlsplit(provider.base_url).port or 80).installed() as connections,
        Path(os.devnull).open("w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):
        configure_environment()
        if args.connection_cache_seconds is not None:
            os.environ["CONNECTION_CACHE_SECONDS"] = str(args.connection_cache_seconds)
        gateway = attributed_gateway(aws)
        results = {
            name: run_case(gateway, aws, provider, connections, name, capacity, args.requests, args.warmup)
            for name, capacity in CASES.items()
        }
        alone = provider_alone(provider, args.requests, args.warmup)
    if not all(result.setup_authorizer_reads for result in results.values()):
        sys.exit("counting missed the authorizer's DynamoDB GetItem (pynamodb's botocore session)")
    print(report(results, alone, args.requests, args.warmup))


if __name__ == "__main__":
    main()
