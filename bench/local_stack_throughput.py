"""The local stack over real HTTP: the latency the gateway adds at one request in flight, and the throughput and
latency at many in flight, non-streamed and streamed, with where the CPU goes.

Starts `python -m local_stack` as a subprocess (an ephemeral port, its own state in a temporary folder), a
zero-latency loopback OpenAI-compatible provider in a process of its own, and one connection to it with limits
that never refuse. Each client thread has its own keep-alive connection to the gateway. Prints markdown.

    uv run --frozen python -m bench.local_stack_throughput [--requests N] [--concurrency C] [--seconds S]
"""

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

from bench.completion_gateway import CASES, MODEL, MODES, PROMPT, FirstContent
from local_stack.lambda_service import DEFAULT_MAX_INSTANCES
from tests.local_stack_process import running_local_stack
from tests.loopback_providers import loopback_provider

# The targets, reported against, not asserted.
TARGET_ADDED_P50_MS = 10.0
TARGET_REQUESTS_PER_SECOND = 100.0
CAPACITY = CASES["minute + hour"]
CLIENT_TIMEOUT = urllib3.Timeout(connect=5, read=60)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class Target:
    """Where a client sends its completions, with what."""

    url: str
    path: str
    headers: dict[str, str]
    model: str


@dataclass(frozen=True)
class Timing:
    """One request, in ms from the moment it was sent."""

    # a stream's first content piece; the whole answer otherwise
    first_content_ms: float
    last_byte_ms: float


def complete(pool: urllib3.HTTPConnectionPool, target: Target, stream: bool) -> Timing:
    """One chat completion over `pool`'s keep-alive connection, read to its end."""
    body = json.dumps({**PROMPT, "model": target.model, "stream": stream}).encode()
    started = time.perf_counter_ns()
    response = pool.urlopen(
        "POST", target.path, body=body, headers=target.headers, preload_content=False, retries=False
    )
    first_content = 0
    received: list[bytes] = []
    content = FirstContent()
    pieces: Iterable[bytes] = response.read_chunked() if response.chunked else [response.read()]
    for piece in pieces:
        received.append(piece)
        if stream and not first_content and content.seen_in(piece):
            first_content = time.perf_counter_ns()
    last_byte = time.perf_counter_ns()
    response.release_conn()
    answer = b"".join(received)
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {answer[:300]!r}")
    if stream and not (first_content and answer.endswith(b"data: [DONE]\n\n")):
        raise RuntimeError(f"the stream did not carry content to its end: {answer[-300:]!r}")
    if not stream and not json.loads(answer)["choices"][0]["message"]["content"]:
        raise RuntimeError(f"the answer has no content: {answer[:300]!r}")
    return Timing(((first_content or last_byte) - started) / 1e6, (last_byte - started) / 1e6)


def keep_alive_pool(url: str) -> urllib3.HTTPConnectionPool:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=1, block=True, timeout=CLIENT_TIMEOUT)


# --- the loopback provider, in a process of its own -------------------------------------------------------


def serve_provider(report_to: Connection, stop: Any) -> None:
    with loopback_provider("openai") as provider:
        report_to.send((provider.base_url, provider.api_key))
        stop.wait()


@contextmanager
def provider_process() -> Iterator[tuple[str, str, int]]:
    """A loopback OpenAI-compatible provider in a process of its own: base URL, API key and process id."""
    spawn = multiprocessing.get_context("spawn")
    receiving, sending = spawn.Pipe(duplex=False)
    stop = spawn.Event()
    process = spawn.Process(target=serve_provider, args=(sending, stop), name="loopback-provider")
    process.start()
    try:
        if not receiving.poll(60):
            raise SystemExit("the loopback provider did not start")
        base_url, api_key = receiving.recv()
        assert process.pid is not None
        yield base_url, api_key, process.pid
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def provider_target(base_url: str, api_key: str) -> Target:
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    return Target(base_url, urlsplit(base_url).path + "/chat/completions", headers, MODEL)


# --- the gateway --------------------------------------------------------------------------------------------


def connection_target(bootstrap: dict[str, str], provider_url: str, provider_key: str) -> Target:
    """Creates the benchmark's connection on the local stack; where its completions go."""
    path = f"/api/v1/workspaces/{bootstrap['workspaceId']}/environments/{bootstrap['environmentId']}"
    headers = {"Authorization": f"Bearer {bootstrap['apiKey']}", "Content-Type": "application/json"}
    config = {"apiKey": provider_key, "baseUrl": provider_url}
    body = {"name": "bench", "provider": "openai", "config": config, "capacity": CAPACITY}
    pool = keep_alive_pool(bootstrap["baseUrl"])
    created = pool.urlopen("POST", path + "/ai-connections", body=json.dumps(body).encode(), headers=headers)
    if created.status != 201:
        raise SystemExit(f"the connection was not created: {created.status} {created.data[:300]!r}")
    return Target(bootstrap["baseUrl"], path + "/chat/completions", headers, f"bench/{MODEL}")


# --- CPU by process, from /proc -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far; 0 once it has gone."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # utime and stime, the 14th and 15th fields of the line (the 12th and 13th after the command name)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def command_line(pid: int) -> list[str]:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def lambda_function(pid: int) -> str | None:
    """The function an instance process runs, from the environment the local stack gave it."""
    try:
        environ = (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for variable in environ:
        name, _, value = variable.partition(b"=")
        if name == b"AWS_LAMBDA_FUNCTION_NAME":
            return value.decode().removeprefix("vmx-local-")
    return None


class Processes:
    """The processes of the benchmark, by role: this one (the clients), the provider, the local stack's front
    process (gateway, Runtime API endpoints, moto, event pollers) and each function's instances."""

    def __init__(self, provider_pid: int) -> None:
        self._provider_pid = provider_pid
        stacks = [pid for pid in children(os.getpid()) if command_line(pid)[1:3] == ["-m", "local_stack"]]
        if len(stacks) != 1:
            raise SystemExit(f"expected one local stack process, found {stacks}")
        self.front_pid = stacks[0]

    def by_role(self) -> dict[int, str]:
        roles = {os.getpid(): "benchmark clients", self._provider_pid: "loopback provider"}
        roles[self.front_pid] = "local stack front (gateway, Runtime API, moto, event pollers)"
        for pid in children(self.front_pid):
            function = lambda_function(pid)
            if function is not None:
                roles[pid] = f"{function} instances"
        return roles

    def instances(self) -> Counter[str]:
        return Counter(role for role in self.by_role().values() if role.endswith(" instances"))


@dataclass(frozen=True)
class CpuUse:
    seconds: float
    # by role: CPU seconds, and how many processes
    by_role: dict[str, tuple[float, int]]


@contextmanager
def cpu_use(processes: Processes) -> Iterator[list[CpuUse]]:
    """The CPU each role used while the block ran, appended to the yielded list when it ends. Processes that
    started during the block count from zero: an instance's start-up is in its figure."""
    before = {pid: cpu_seconds(pid) for pid in processes.by_role()}
    started = time.monotonic()
    measured: list[CpuUse] = []
    yield measured
    elapsed = time.monotonic() - started
    by_role: dict[str, tuple[float, int]] = {}
    for pid, role in processes.by_role().items():
        seconds, count = by_role.get(role, (0.0, 0))
        by_role[role] = (seconds + cpu_seconds(pid) - before.get(pid, 0.0), count + 1)
    measured.append(CpuUse(elapsed, by_role))


# --- load ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    timings: list[Timing]
    errors: Counter[str]
    seconds: float
    cpu: CpuUse


def one_in_flight(target: Target, stream: bool, requests: int, warmup: int) -> list[Timing]:
    pool = keep_alive_pool(target.url)
    for _ in range(warmup):
        complete(pool, target, stream)
    return [complete(pool, target, stream) for _ in range(requests)]


def in_flight(
    target: Target, stream: bool, concurrency: int, requests: int, seconds: float, processes: Processes
) -> Load:
    """`concurrency` threads, each with its own keep-alive connection, send until `requests` have been sent
    or `seconds` have passed, whichever comes first."""
    lock = threading.Lock()
    sent = 0
    timings: list[Timing] = []
    errors: Counter[str] = Counter()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        nonlocal sent
        pool = keep_alive_pool(target.url)
        while time.monotonic() < stop_at:
            with lock:
                if sent >= requests:
                    return
                sent += 1
            try:
                timing = complete(pool, target, stream)
            except (RuntimeError, urllib3.exceptions.HTTPError) as exc:
                with lock:
                    errors[str(exc)[:120]] += 1
                continue
            with lock:
                timings.append(timing)

    threads = [threading.Thread(target=client, name=f"client-{index}") for index in range(concurrency)]
    with cpu_use(processes) as measured:
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    return Load(timings, errors, elapsed, measured[0])


# --- the report ---------------------------------------------------------------------------------------------


def percentiles(samples: Iterable[float]) -> str:
    values = sorted(samples)
    if len(values) < 2:
        return " | ".join(["n/a"] * 3)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49]:.2f} | {cuts[89]:.2f} | {cuts[98]:.2f}"


def latency_rows(label: str, timings: list[Timing], provider: dict[str, float], stream: bool) -> list[str]:
    measure: Callable[[Timing], float] = (lambda t: t.first_content_ms) if stream else (lambda t: t.last_byte_ms)
    what = "the first content piece" if stream else "the last byte"
    rows = [f"| {label}: to {what} | {percentiles(measure(t) for t in timings)} |"]
    rows.append(f"| {label}: **gateway added** | {percentiles(measure(t) - provider[label] for t in timings)} |")
    if stream:
        rows.append(f"| {label}: to the last byte | {percentiles(t.last_byte_ms for t in timings)} |")
    return rows


def cpu_table(loads: dict[str, Load], cores: int) -> list[str]:
    names = list(loads)
    roles = sorted({role for load in loads.values() for role in load.cpu.by_role})
    lines = [
        "| Process | " + " | ".join(f"{name}: cores busy | ms CPU per request" for name in names) + " |",
        "|---|" + "---:|---:|" * len(names),
    ]
    for role in [*roles, "all"]:
        cells = []
        for load in loads.values():
            if role == "all":
                seconds = sum(seconds for seconds, _ in load.cpu.by_role.values())
                label = "**all**"
            else:
                seconds, count = load.cpu.by_role.get(role, (0.0, 0))
                label = f"{role} ({count})" if role.endswith(" instances") else role
            served = max(len(load.timings), 1)
            cells.append(f"{seconds / load.cpu.seconds:.2f} | {seconds * 1000 / served:.2f}")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines.append(f"| machine | {' | '.join(f'{cores} cores | ' for _ in names)} |")
    return lines


def report(
    single: dict[str, list[Timing]],
    provider: dict[str, float],
    loads: dict[str, Load],
    provider_loads: dict[str, Load],
    instances: Counter[str],
    args: argparse.Namespace,
) -> str:
    cores = os.cpu_count() or 1
    lines = [
        f"Local stack over HTTP, {cores} cores, `--max-instances {args.max_instances}`; a zero-latency loopback "
        "provider in its own process; keep-alive clients.",
        "",
        f"One request in flight ({args.requests} measured after {args.warmup} warm-up), ms:",
        "",
        "| | p50 | p90 | p99 |",
        "|---|---:|---:|---:|",
    ]
    for mode in MODES:
        lines.append(f"| loopback provider alone, {mode} | {percentiles(provider_samples(single, mode))} |")
    for mode, stream in MODES.items():
        lines += latency_rows(mode, single[mode], provider, stream)
    lines += [
        "",
        "Gateway added = each request's time (to the last byte; to the first content piece when streamed) minus the",
        "provider's own median for the same, measured alone from this process over keep-alive.",
        "",
        f"{args.concurrency} in flight (each run up to {args.concurrent_requests} requests or {args.seconds:g} s):",
        "",
        "| | requests | errors | seconds | req/s | p50 ms | p90 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, group in (("loopback provider alone", provider_loads), ("through the gateway", loads)):
        for mode, load in group.items():
            stream = MODES[mode]
            served = len(load.timings)
            rate = served / load.seconds if load.seconds else 0.0
            latency = percentiles(t.first_content_ms if stream else t.last_byte_ms for t in load.timings)
            what = "to the first content piece" if stream else "to the last byte"
            lines.append(
                f"| {label}, {mode} ({what}) | {served} | {sum(load.errors.values())} | {load.seconds:.1f} | "
                f"{rate:.1f} | {latency} |"
            )
    errors = Counter[str]()
    for load in loads.values():
        errors.update(load.errors)
    if errors:
        lines += ["", "Errors: " + "; ".join(f"{count} x {error}" for error, count in errors.most_common(5))]
    lines += [
        "",
        f"CPU while {args.concurrency} were in flight through the gateway (cores busy = CPU seconds / wall seconds; "
        "ms CPU per request served):",
        "",
        *cpu_table(loads, cores),
        "",
        "Instances at the end: " + ", ".join(f"{role.removesuffix(' instances')} {n}" for role, n in instances.items()),
        "",
        "Targets (reported, not asserted): gateway added p50 at one in flight "
        f"<= {TARGET_ADDED_P50_MS:g} ms, >= {TARGET_REQUESTS_PER_SECOND:g} req/s at {args.concurrency} in flight.",
    ]
    for mode, stream in MODES.items():
        measure = (lambda t: t.first_content_ms) if stream else (lambda t: t.last_byte_ms)
        added = statistics.median(measure(t) for t in single[mode]) - provider[mode]
        rate = len(loads[mode].timings) / loads[mode].seconds
        lines.append(
            f"- {mode}: added p50 {added:.1f} ms ({'met' if added <= TARGET_ADDED_P50_MS else 'missed'}), "
            f"{rate:.1f} req/s ({'met' if rate >= TARGET_REQUESTS_PER_SECOND else 'missed'})"
        )
    return "\n".join(lines)


def provider_samples(single: dict[str, list[Timing]], mode: str) -> list[float]:
    return [t.first_content_ms if MODES[mode] else t.last_byte_ms for t in single[f"provider {mode}"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.local_stack_throughput", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=300, help="measured requests at one in flight, per mode")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up requests at one in flight, per mode")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight for the throughput runs")
    parser.add_argument("--concurrent-requests", type=int, default=3000, help="at most this many per throughput run")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long per throughput run")
    parser.add_argument("--max-instances", type=int, default=DEFAULT_MAX_INSTANCES, help="passed to the local stack")
    args = parser.parse_args(argv)
    if args.requests < 2 or args.warmup < 1 or args.concurrency < 1 or args.concurrent_requests < 2:
        parser.error("--requests and --concurrent-requests must be at least 2, --warmup and --concurrency 1")

    with (
        provider_process() as (provider_url, provider_key, provider_pid),
        tempfile.TemporaryDirectory(prefix="vmx-bench-") as run_dir,
        running_local_stack(Path(run_dir), "--max-instances", str(args.max_instances)) as bootstrap,
    ):
        processes = Processes(provider_pid)
        alone = provider_target(provider_url, provider_key)
        target = connection_target(bootstrap, provider_url, provider_key)
        single: dict[str, list[Timing]] = {}
        for mode, stream in MODES.items():
            single[f"provider {mode}"] = one_in_flight(alone, stream, args.requests, args.warmup)
            single[mode] = one_in_flight(target, stream, args.requests, args.warmup)
        provider = {mode: statistics.median(provider_samples(single, mode)) for mode in MODES}
        loads: dict[str, Load] = {}
        provider_loads: dict[str, Load] = {}
        for mode, stream in MODES.items():
            bounded = (args.concurrency, args.concurrent_requests, args.seconds, processes)
            provider_loads[mode] = in_flight(alone, stream, *bounded)
            # the instances the load needs are started before it is measured
            in_flight(target, stream, args.concurrency, args.concurrency * 4, args.seconds, processes)
            loads[mode] = in_flight(target, stream, *bounded)
        instances = processes.instances()
    print(report(single, provider, loads, provider_loads, instances, args))


if __name__ == "__main__":
    main()
