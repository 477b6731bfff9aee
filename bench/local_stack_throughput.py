"""The local stack over real HTTP: the latency the gateway adds at one request in flight, and the throughput and
latency at many in flight, non-streamed and streamed, with where the CPU goes.

Starts `python -m local_stack` as a subprocess (an ephemeral port, its own state in a temporary folder), a
zero-latency loopback OpenAI-compatible provider in a process of its own, and one connection to it with limits
that never refuse. Each client thread has its own keep-alive connection to the gateway. Prints markdown.

    uv run --frozen python -m bench.local_stack_throughput [--requests N] [--concurrency C] [--seconds S]
"""

import argparse
import dataclasses
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

from bench.completion_gateway import CASES, MODEL, MODES, PROMPT, FirstContent, connection_resets_dropped
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
# A load run's key is authorized once, before it: the run must end before the authorizer's cache does (60 s).
MAX_LOAD_SECONDS = 50.0
# Between measurements, the local stack is idle once its usage statistics count every completion answered and it
# has then used under a tenth of a core for QUIET_WINDOW_SECONDS, or once the timeout has passed.
QUIET_WINDOW_SECONDS = 0.3
IDLE_TIMEOUT_SECONDS = 120.0


class Served:
    """Completions the gateway answered: its usage statistics count as many once their events are delivered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self) -> None:
        with self._lock:
            self._count += 1

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


@dataclass(frozen=True)
class Target:
    """Where a client sends its completions, with what."""

    url: str
    path: str
    headers: dict[str, str]
    model: str
    # the gateway's tally; None for the provider
    served: Served | None = None


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
    if target.served is not None:
        target.served.add()
    return Timing(((first_content or last_byte) - started) / 1e6, (last_byte - started) / 1e6)


def keep_alive_pool(url: str) -> urllib3.HTTPConnectionPool:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=1, block=True, timeout=CLIENT_TIMEOUT)


# --- the loopback provider, in a process of its own -------------------------------------------------------


def serve_provider(report_to: Connection, stop: Any) -> None:
    with connection_resets_dropped(), loopback_provider("openai") as provider:
        report_to.send((provider.base_url, provider.api_key))
        stop.wait()


@contextmanager
def provider_process() -> Iterator[tuple[str, str, int]]:
    """A loopback OpenAI-compatible provider in a process of its own: base URL, API key and process id."""
    # Forked where that is safe (Linux), so the child need not import this module again; started afresh elsewhere.
    context = multiprocessing.get_context("fork") if sys.platform == "linux" else multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    stop = context.Event()
    process = context.Process(target=serve_provider, args=(sending, stop), name="loopback-provider")
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

    def stack_cpu_seconds(self) -> float:
        """The local stack's CPU so far: its front process and the instances running now."""
        return sum(cpu_seconds(pid) for pid in [self.front_pid, *children(self.front_pid)])


@dataclass(frozen=True)
class CpuUse:
    seconds: float
    # by role: CPU seconds, and how many processes
    by_role: dict[str, tuple[float, int]]


@contextmanager
def cpu_use(processes: Processes | None) -> Iterator[list[CpuUse]]:
    """The CPU each role used while the block ran, appended to the yielded list when it ends (nothing when
    `processes` is None). Processes that started during the block count from zero: an instance's start-up is in
    its figure."""
    measured: list[CpuUse] = []
    if processes is None:
        yield measured
        return
    before = {pid: cpu_seconds(pid) for pid in processes.by_role()}
    started = time.monotonic()
    yield measured
    elapsed = time.monotonic() - started
    by_role: dict[str, tuple[float, int]] = {}
    for pid, role in processes.by_role().items():
        seconds, count = by_role.get(role, (0.0, 0))
        by_role[role] = (seconds + cpu_seconds(pid) - before.get(pid, 0.0), count + 1)
    measured.append(CpuUse(elapsed, by_role))


# --- the local stack under test ---------------------------------------------------------------------------


class Stack:
    """The local stack under test: the benchmark's connection on it, the completions answered through it, and
    its processes (None where /proc cannot be read)."""

    def __init__(
        self, bootstrap: dict[str, str], provider_url: str, provider_key: str, processes: Processes | None
    ) -> None:
        self.url = bootstrap["baseUrl"]
        self.processes = processes
        self.served = Served()
        self._bootstrap = bootstrap
        self._admin = {"Authorization": f"Bearer {bootstrap['apiKey']}", "Content-Type": "application/json"}
        self._pool = keep_alive_pool(self.url)
        environment = f"/api/v1/workspaces/{bootstrap['workspaceId']}/environments/{bootstrap['environmentId']}"
        config = {"apiKey": provider_key, "baseUrl": provider_url}
        created = self._call(
            "POST",
            environment + "/ai-connections",
            {"name": "bench", "provider": "openai", "config": config, "capacity": CAPACITY},
        )
        self._usage_path = f"{environment}/ai-connections/{created['connectionId']}/usage"
        self._target = Target(self.url, environment + "/chat/completions", self._admin, f"bench/{MODEL}", self.served)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        payload = json.dumps(body).encode() if body is not None else None
        response = self._pool.urlopen(method, path, body=payload, headers=self._admin)
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: {response.status} {response.data[:300]!r}")
        return json.loads(response.data)

    def with_fresh_key(self, pool: urllib3.HTTPConnectionPool) -> Target:
        """The completions target with a new gateway-role key, authorized by one completion over `pool`: its
        authorizer result is cached from then on, so a run shorter than the cache's 60 s never waits for it."""
        body = {"name": "bench", "role": "gateway", "environmentIds": [self._bootstrap["environmentId"]]}
        key = self._call("POST", f"/api/v1/workspaces/{self._bootstrap['workspaceId']}/api-keys", body)["apiKey"]
        fresh = dataclasses.replace(self._target, headers={**self._admin, "Authorization": f"Bearer {key}"})
        complete(pool, fresh, stream=False)
        return fresh

    def counted_by_usage(self) -> int:
        """The completions the usage statistics count: those whose CompletionRecorded has been delivered."""
        now = time.time()
        window = urlencode(
            {
                "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 7200)),
                "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
                "granularity": "hour",
            }
        )
        return sum(bucket["requests"] for bucket in self._call("GET", f"{self._usage_path}?{window}")["buckets"])

    def idle(self, timeout: float = IDLE_TIMEOUT_SECONDS) -> float:
        """Waits until every completion answered so far is in the usage statistics (its work after the response
        is done: publishing comes last, and its event has been delivered), then for a quiet spell (under a tenth
        of a core for QUIET_WINDOW_SECONDS). Returns the seconds waited, at most about `timeout`."""
        started = time.monotonic()
        while self.counted_by_usage() < self.served.count and time.monotonic() - started < timeout:
            time.sleep(0.5)
        while time.monotonic() - started < timeout:
            before = self.processes.stack_cpu_seconds() if self.processes else 0.0
            time.sleep(QUIET_WINDOW_SECONDS)
            after = self.processes.stack_cpu_seconds() if self.processes else 0.0
            if after - before < QUIET_WINDOW_SECONDS / 10:
                break
        return time.monotonic() - started


# --- load ---------------------------------------------------------------------------------------------------


def latency_ms(timing: Timing, stream: bool) -> float:
    """What a client waits for: a stream's first content piece, or the whole answer."""
    return timing.first_content_ms if stream else timing.last_byte_ms


@dataclass(frozen=True)
class Load:
    timings: list[Timing]
    errors: Counter[str]
    seconds: float
    # None where /proc cannot be read
    cpu: CpuUse | None

    @property
    def per_second(self) -> float:
        return len(self.timings) / self.seconds if self.seconds else 0.0


def one_at_a_time(
    pool: urllib3.HTTPConnectionPool, target: Target, stream: bool, requests: int, pause: float = 0.0
) -> list[Timing]:
    timings = []
    for _ in range(requests):
        time.sleep(pause)
        timings.append(complete(pool, target, stream))
    return timings


def many_at_once(
    pools: list[urllib3.HTTPConnectionPool],
    target: Target,
    stream: bool,
    requests: int,
    seconds: float,
    processes: Processes | None,
) -> Load:
    """A thread per pool, each on its own keep-alive connection, sending one request after another until
    `requests` have been sent or `seconds` have passed."""
    lock = threading.Lock()
    sent = 0
    timings: list[Timing] = []
    errors: Counter[str] = Counter()
    stop_at = time.monotonic() + seconds

    def client(pool: urllib3.HTTPConnectionPool) -> None:
        nonlocal sent
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

    threads = [threading.Thread(target=client, args=(pool,), name=f"client-{n}") for n, pool in enumerate(pools)]
    with cpu_use(processes) as measured:
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    return Load(timings, errors, elapsed, measured[0] if measured else None)


@dataclass(frozen=True)
class OneInFlight:
    provider_alone: list[Timing]
    back_to_back: list[Timing]
    # each after a pause in which the previous one's work after its response can finish
    settled: list[Timing]


@dataclass(frozen=True)
class ManyInFlight:
    provider_alone: Load
    through_gateway: Load
    # how long the local stack took to go idle after the load: the work after the responses and the events'
    # delivery catching up
    drain_seconds: float


def one_in_flight(alone: Target, stack: Stack, args: argparse.Namespace) -> dict[str, OneInFlight]:
    """Each measurement starts on an idle stack with a fresh key; the modes take turns, so that neither inherits
    the other's backlog."""
    provider_pool = keep_alive_pool(alone.url)
    provider: dict[str, list[Timing]] = {}
    back_to_back: dict[str, list[Timing]] = {}
    settled: dict[str, list[Timing]] = {}
    for mode, stream in MODES.items():
        one_at_a_time(provider_pool, alone, stream, args.warmup)
        provider[mode] = one_at_a_time(provider_pool, alone, stream, args.requests)
    for mode, stream in MODES.items():
        pool = keep_alive_pool(stack.url)
        target = stack.with_fresh_key(pool)
        one_at_a_time(pool, target, stream, args.warmup)
        stack.idle()
        back_to_back[mode] = one_at_a_time(pool, target, stream, args.requests)
    for mode, stream in MODES.items():
        stack.idle()
        pool = keep_alive_pool(stack.url)
        settled[mode] = one_at_a_time(pool, stack.with_fresh_key(pool), stream, args.settled_requests, args.pause)
    return {mode: OneInFlight(provider[mode], back_to_back[mode], settled[mode]) for mode in MODES}


def many_in_flight(alone: Target, stack: Stack, stream: bool, args: argparse.Namespace) -> ManyInFlight:
    bounds = (args.concurrent_requests, args.seconds, stack.processes)
    provider_pools = [keep_alive_pool(alone.url) for _ in range(args.concurrency)]
    provider_load = many_at_once(provider_pools, alone, stream, *bounds)
    pools = [keep_alive_pool(stack.url) for _ in range(args.concurrency)]
    # opens the connections and starts the instances the load needs before it is measured
    many_at_once(pools, stack.with_fresh_key(pools[0]), stream, args.concurrency * 4, args.seconds, None)
    stack.idle()
    load = many_at_once(pools, stack.with_fresh_key(pools[0]), stream, *bounds)
    return ManyInFlight(provider_load, load, stack.idle())


# --- the report ---------------------------------------------------------------------------------------------


def percentiles(samples: Iterable[float]) -> str:
    values = list(samples)
    if len(values) < 2:
        return "n/a | n/a | n/a"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49]:.2f} | {cuts[89]:.2f} | {cuts[98]:.2f}"


def what_is_timed(stream: bool) -> str:
    return "to the first content piece" if stream else "to the last byte"


def median_added(timings: list[Timing], provider: list[Timing], stream: bool) -> float:
    own = statistics.median(latency_ms(timing, stream) for timing in provider)
    return statistics.median(latency_ms(timing, stream) for timing in timings) - own


def latency_table(single: dict[str, OneInFlight], args: argparse.Namespace) -> list[str]:
    lines = ["| | p50 | p90 | p99 |", "|---|---:|---:|---:|"]
    for mode, run in single.items():
        stream = MODES[mode]
        what = what_is_timed(stream)
        provider = statistics.median(latency_ms(timing, stream) for timing in run.provider_alone)
        lines.append(
            f"| {mode}: loopback provider alone, {what} | "
            f"{percentiles(latency_ms(timing, stream) for timing in run.provider_alone)} |"
        )
        for label, timings in (("back to back", run.back_to_back), (f"settled ({args.pause:g} s apart)", run.settled)):
            lines += [
                f"| {mode}, {label}: through the gateway, {what} | "
                f"{percentiles(latency_ms(timing, stream) for timing in timings)} |",
                f"| {mode}, {label}: **gateway added** | "
                f"{percentiles(latency_ms(timing, stream) - provider for timing in timings)} |",
            ]
    return lines


def load_table(many: dict[str, ManyInFlight]) -> list[str]:
    lines = [
        "| | requests | errors | seconds | req/s | p50 ms | p90 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, run in many.items():
        stream = MODES[mode]
        for label, load in (
            ("loopback provider alone", run.provider_alone),
            ("through the gateway", run.through_gateway),
        ):
            latency = percentiles(latency_ms(timing, stream) for timing in load.timings)
            lines.append(
                f"| {mode}: {label}, {what_is_timed(stream)} | {len(load.timings)} | {sum(load.errors.values())} | "
                f"{load.seconds:.1f} | {load.per_second:.1f} | {latency} |"
            )
    return lines


def cpu_table(many: dict[str, ManyInFlight]) -> list[str]:
    measured = {mode: run.through_gateway for mode, run in many.items()}
    uses = {mode: load.cpu for mode, load in measured.items() if load.cpu is not None}
    if not uses:
        return ["(not measured: /proc cannot be read here)"]
    roles = sorted({role for use in uses.values() for role, (seconds, _) in use.by_role.items() if seconds})
    lines = [
        "| Process | " + " | ".join(f"{mode}: cores busy | ms CPU per request" for mode in uses) + " |",
        "|---|" + "---:|---:|" * len(uses),
    ]
    for role in [*roles, "all"]:
        label = "**all**" if role == "all" else role
        cells = []
        for mode, use in uses.items():
            if role == "all":
                seconds = sum(seconds for seconds, _ in use.by_role.values())
            else:
                seconds, count = use.by_role.get(role, (0.0, 0))
                label = f"{role} ({count})" if role.endswith(" instances") else role
            served = max(len(measured[mode].timings), 1)
            cells.append(f"{seconds / use.seconds:.2f} | {seconds * 1000 / served:.2f}")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def report(
    single: dict[str, OneInFlight],
    many: dict[str, ManyInFlight],
    instances: Counter[str],
    delivered: tuple[int, int],
    args: argparse.Namespace,
) -> str:
    lines = [
        f"The local stack over HTTP on {os.cpu_count()} cores, `--max-instances {args.max_instances}`; a zero-latency "
        "loopback provider in its own process; keep-alive clients.",
        "",
        f"One request in flight, ms ({args.requests} back to back after {args.warmup} warm-up, then "
        f"{args.settled_requests} settled):",
        "",
        *latency_table(single, args),
        "",
        "Gateway added = a request's time through the gateway minus the provider's own median, measured alone from",
        "this process over keep-alive. Back to back, a request competes with the previous ones' work after their",
        "responses (reconcile, events, the events' delivery to their consumers) in the local stack's processes;",
        "settled, that work has had time to finish.",
        "",
        f"{args.concurrency} in flight, each client thread on its own keep-alive connection (at most "
        f"{args.concurrent_requests} requests or {args.seconds:g} s per run, after a warm-up run):",
        "",
        *load_table(many),
    ]
    errors = Counter[str]()
    for run in many.values():
        errors.update(run.through_gateway.errors)
    if errors:
        lines += ["", "Errors: " + "; ".join(f"{count} x {error}" for error, count in errors.most_common(5))]
    drains = ", ".join(f"{mode} {run.drain_seconds:.1f} s" for mode, run in many.items())
    running = ", ".join(f"{role.removesuffix(' instances')} {count}" for role, count in instances.items())
    lines += [
        "",
        f"CPU while {args.concurrency} were in flight through the gateway (cores busy = CPU seconds over wall seconds;",
        "processes by role, how many in brackets):",
        "",
        *cpu_table(many),
        "",
        f"After each load the local stack took this long to go idle (its events delivered): {drains}.",
        f"At the end the usage statistics counted {delivered[0]} of the {delivered[1]} completions answered.",
        f"Instances running at the end: {running or 'unknown'}.",
        "",
        f"Targets (reported, not asserted): gateway added p50 <= {TARGET_ADDED_P50_MS:g} ms at one in flight, "
        f">= {TARGET_REQUESTS_PER_SECOND:g} req/s at 16 in flight.",
        "",
    ]
    for mode, stream in MODES.items():
        one, load = single[mode], many[mode].through_gateway
        added = median_added(one.back_to_back, one.provider_alone, stream)
        settled = median_added(one.settled, one.provider_alone, stream)
        lines.append(
            f"- {mode}: added p50 {added:.1f} ms back to back, {settled:.1f} ms settled "
            f"({'met' if settled <= TARGET_ADDED_P50_MS else 'missed'}); {load.per_second:.1f} req/s at "
            f"{args.concurrency} in flight ({'met' if load.per_second >= TARGET_REQUESTS_PER_SECOND else 'missed'})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.local_stack_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="one in flight, back to back, per mode (200)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests at one in flight, per mode (20)")
    parser.add_argument("--settled-requests", type=int, default=50, help="one in flight, settled, per mode (50)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between settled requests (0.3)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight in the load runs (16)")
    parser.add_argument("--concurrent-requests", type=int, default=3000, help="at most this many per load run (3000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long per load run (20, at most 50)")
    parser.add_argument("--max-instances", type=int, default=DEFAULT_MAX_INSTANCES, help="passed to the local stack")
    args = parser.parse_args(argv)
    if (
        min(args.requests, args.settled_requests, args.concurrent_requests) < 2
        or min(args.warmup, args.concurrency) < 1
    ):
        parser.error("the request counts must be at least 2, --warmup and --concurrency at least 1")
    if not 0 < args.seconds <= MAX_LOAD_SECONDS:
        parser.error(
            f"--seconds must be more than 0 and at most {MAX_LOAD_SECONDS:g} (the authorizer's cache lasts 60)"
        )

    with (
        provider_process() as (provider_url, provider_key, provider_pid),
        tempfile.TemporaryDirectory(prefix="vmx-bench-") as run_dir,
        running_local_stack(Path(run_dir), "--max-instances", str(args.max_instances)) as bootstrap,
    ):
        stack = Stack(bootstrap, provider_url, provider_key, Processes(provider_pid) if PROC.is_dir() else None)
        alone = provider_target(provider_url, provider_key)
        single = one_in_flight(alone, stack, args)
        many = {mode: many_in_flight(alone, stack, stream, args) for mode, stream in MODES.items()}
        stack.idle()
        delivered = (stack.counted_by_usage(), stack.served.count)
        instances = stack.processes.instances() if stack.processes else Counter[str]()
    print(report(single, many, instances, delivered, args))


if __name__ == "__main__":
    main()
