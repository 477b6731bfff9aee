"""Both benchmarks run as bench/README.md says, at a tiny size, side by side to keep the suite short. The call
counts of `completion_gateway` are exact and stay what the README shows; the timings belong to the benchmarks,
not to a test."""

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tests.local_stack_process import REPO_ROOT

# The connection cache outlives the run: a loaded machine must not turn its 5 s refresh into counted reads.
GATEWAY_ARGS = ("--requests", "2", "--warmup", "1", "--connection-cache-seconds", "60")
THROUGHPUT_ARGS = (
    *("--requests", "3", "--warmup", "1", "--settled-requests", "2", "--pause", "0.05"),
    *("--concurrency", "2", "--concurrent-requests", "4", "--seconds", "10"),
)
TIMEOUT_SECONDS = 180
# (phase, function, service, operation, table; empty cells left out) -> the four capacity cases' counts:
# minute + hour; + per-IP day requests; + per-IP day requests and tokens; minute + hour in priority classes
Rows = dict[tuple[str, ...], list[str]]


@contextmanager
def started(module: str, *args: str) -> Iterator["subprocess.Popen[str]"]:
    process = subprocess.Popen(  # noqa: S603 - our own module, with arguments we chose
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def output_of(process: "subprocess.Popen[str]") -> str:
    stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    assert process.returncode == 0, stderr
    return stdout


def calls_table(report: str, mode: str) -> Rows:
    section = report.split(f"AWS calls per admitted request, {mode} (")[1].split("\n\n")[1]
    rows: Rows = {}
    for line in section.splitlines()[2:]:
        cells = [cell.strip().strip("*") for cell in line.strip("|").split("|")]
        rows[tuple(cell for cell in cells[:5] if cell)] = cells[5:]
    return rows


def assert_warm_requests_make_one_capacity_write_before_their_first_byte(rows: Rows) -> None:
    # a per-IP scope is an item of its own; priority classes are counted in the same write
    assert rows[("before the first byte", "completions", "DynamoDB", "UpdateItem", "Capacity")] == [
        "1.00",
        "2.00",
        "2.00",
        "1.00",
    ]
    assert rows[("before the first byte",)] == ["1.00", "2.00", "2.00", "1.00"]
    # the authorizer's answer, the connection and its credentials all come from caches
    assert rows[("before the first byte", "authorizer", "DynamoDB", "GetItem", "Tenancy")] == ["0.00"] * 4
    assert rows[("before the first byte", "completions", "DynamoDB", "GetItem", "Connections")] == ["0.00"] * 4
    assert rows[("before the first byte", "completions", "KMS", "Decrypt")] == ["0.00"] * 4
    assert rows[("before the first byte", "completions", "STS", "AssumeRole")] == ["0.00"] * 4
    assert rows[("during the body",)] == ["0.00"] * 4


def assert_the_reconcile_and_the_events_wait_for_the_last_byte(rows: Rows) -> None:
    # one settling write per scope (its reconcile), and one PutEvents, all after the client has its answer
    assert rows[("after the last byte", "completions", "DynamoDB", "UpdateItem", "Capacity")] == [
        "1.00",
        "2.00",
        "2.00",
        "1.00",
    ]
    assert rows[("after the last byte", "completions", "EventBridge", "PutEvents")] == ["1.00"] * 4
    assert rows[("after the last byte",)] == ["2.00", "3.00", "3.00", "2.00"]
    assert rows[("all",)] == ["3.00", "5.00", "5.00", "3.00"]
    assert [call for call in rows if call[-1] == "PutEvents"] == [
        ("after the last byte", "completions", "EventBridge", "PutEvents")
    ]


def assert_every_request_went_through_the_local_stack(report: str) -> None:
    for mode, timed in (("non-streamed", "to the last byte"), ("streamed", "to the first content piece")):
        assert f"| {mode}, back to back: **gateway added** |" in report
        assert f"| {mode}, settled (0.05 s apart): **gateway added** |" in report
        served = re.search(rf"^\| {mode}: through the gateway, {timed} \| (\d+) \| (\d+) \|", report, re.MULTILINE)
        assert served is not None, report
        assert served.groups() == ("4", "0"), "requests served and errors"
    assert re.search(r"^\| local stack front \(.*\) \| \d+\.\d\d \|", report, re.MULTILINE), report
    # every completion answered was recorded, its event delivered to the usage statistics
    delivered = re.search(r"usage statistics counted (\d+) of the (\d+) completions", report)
    assert delivered is not None and delivered[1] == delivered[2], report


def test_both_benchmarks_run_and_completion_gateway_counts_the_documented_calls() -> None:
    with ExitStack() as running:
        gateway = running.enter_context(started("bench.completion_gateway", *GATEWAY_ARGS))
        throughput = running.enter_context(started("bench.local_stack_throughput", *THROUGHPUT_ARGS))
        gateway_report, throughput_report = output_of(gateway), output_of(throughput)

    for mode in ("non-streamed", "streamed"):
        rows = calls_table(gateway_report, mode)
        assert_warm_requests_make_one_capacity_write_before_their_first_byte(rows)
        assert_the_reconcile_and_the_events_wait_for_the_last_byte(rows)
    assert_every_request_went_through_the_local_stack(throughput_report)
