"""The benchmark runs as the README says, and its call counts, which are exact, stay what the README shows.
Its timings belong to the benchmark, not to a test."""

import re
import subprocess
import sys

from tests.local_stack_process import REPO_ROOT


def test_the_benchmark_runs_and_counts_the_documented_calls() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.completion_gateway", "--requests", "2", "--warmup", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr

    rows = {
        tuple(cell.strip() for cell in line.strip("|").split("|")[:4]): [cell.strip() for cell in line.split("|")[5:8]]
        for line in finished.stdout.splitlines()
        if re.match(r"^\| (authorizer|completions) \|", line)
    }
    assert rows[("authorizer", "DynamoDB", "GetItem", "Tenancy")] == ["2.00", "2.00", "2.00"]
    assert rows[("completions", "DynamoDB", "UpdateItem", "Capacity")] == ["2.00", "3.00", "4.00"]
    assert rows[("completions", "EventBridge", "PutEvents", "")] == ["1.00", "1.00", "1.00"]
    # Warm: credentials come from the function's cache, not KMS.
    assert rows[("completions", "KMS", "Decrypt", "")] == ["0.00", "0.00", "0.00"]
