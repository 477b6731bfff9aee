"""The README's walkthrough and the seeds' curl examples, run as written against the local stack."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = next((REPO_ROOT.parent / "shared" / "seeds").glob("000_*.txt"))
FENCED_BASH = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own documented examples
        ["/bin/bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_readme_walkthrough_runs_green(local_stack: dict[str, str], tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    walkthrough = readme.split("<!-- e2e:walkthrough -->")[1].split("<!-- e2e:end -->")[0]
    script = "\n".join(FENCED_BASH.findall(walkthrough))
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "bootstrap.json").write_text(json.dumps(local_stack))

    result = bash(script, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert '"name": "bedrock-us"' in result.stdout
    assert "the provider id is 'gemini'" in result.stdout
    assert re.search(r'"version": 3,\s+"capacity"', result.stdout)
    assert re.search(r'"name": "batch",\s+"guaranteedPercent": 0,\s+"maximumPercent": 40', result.stdout)
    assert '"priorityClass": "batch"' in result.stdout
    assert "\n204\n" in f"\n{result.stdout}"
    assert "sk-your" not in result.stdout


def seed_commands(base_url: str, api_key: str, workspace_id: str, environment_id: str) -> list[str]:
    commands = [block for block in FENCED_BASH.findall(SEED.read_text()) if block.lstrip().startswith("curl")]
    return [
        command.replace("http://localhost:3000", base_url)
        .replace("{workspaceId}", workspace_id)
        .replace("{environmentId}", environment_id)
        .replace("your-api-key", api_key)
        .strip()
        for command in commands
    ]


def run_curl(command: str) -> tuple[int, dict[str, object]]:
    result = bash(f"{command} -sS -w '\\n%{{http_code}}'", REPO_ROOT)
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_the_seed_curl_examples_work_as_written(local_stack: dict[str, str]) -> None:
    create, update, read = seed_commands(
        local_stack["baseUrl"], local_stack["apiKey"], local_stack["workspaceId"], local_stack["environmentId"]
    )
    assert "POST" in create and "PATCH" in update and "-X" not in read

    created_status, created = run_curl(create)
    connection_id = str(created["connectionId"])
    updated_status, updated = run_curl(update.replace("{connectionId}", connection_id))
    read_status, fetched = run_curl(read.replace("{connectionId}", connection_id))

    assert created_status == 201
    assert created["name"] == "OpenAI Production"
    assert created["config"] == {"apiKey": "********"}
    assert updated_status == 200
    assert updated["capacity"] == [
        {"period": "minute", "requests": 200, "tokens": 200000, "enabled": True, "dimension": None}
    ]
    assert read_status == 200
    assert fetched == updated


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/api/v1/nowhere", None, 404, "not_found"),
        ("PUT", "/api/v1/providers", None, 405, "method_not_allowed"),
        ("POST", "{connections}", "{not json", 400, "invalid_request"),
        (
            "POST",
            "{connections}",
            '{"name": "x", "provider": "openai", "config": {"apiKey": 1}}',
            400,
            "invalid_request",
        ),
        ("POST", "{connections}", json.dumps({"name": "x" * 80_000}), 400, "body_too_large"),
        ("GET", "/api/v1/workspaces/not-a-uuid", None, 400, "invalid_request"),
    ],
)
def test_bad_requests_over_http_get_a_clear_4xx(
    local_stack: dict[str, str], method: str, path: str, body: str | None, status: int, code: str
) -> None:
    connections = (
        f"/api/v1/workspaces/{local_stack['workspaceId']}/environments/{local_stack['environmentId']}/ai-connections"
    )
    url = local_stack["baseUrl"] + path.format(connections=connections)
    data = f"--data-binary {shlex.quote(body)}" if body is not None else ""
    command = (
        f"curl -sS -X {method} {shlex.quote(url)} -H 'Content-Type: application/json' "
        f"-H {shlex.quote('Authorization: Bearer ' + local_stack['apiKey'])} {data} -w '\\n%{{http_code}}'"
    )

    result = bash(command, REPO_ROOT)

    response_body, _, response_status = result.stdout.rpartition("\n")
    assert int(response_status) == status
    assert json.loads(response_body)["error"]["code"] == code
