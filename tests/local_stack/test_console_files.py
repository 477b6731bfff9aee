"""The console's files at the root of the local stack: what is served, with which headers, and what not."""

import json
import threading
from pathlib import Path

import pytest
import requests

from infra.system import AUTHORIZER, FUNCTIONS, MAX_BODY_BYTES, ROUTES
from local_stack.console import ConsoleFiles
from local_stack.gateway import ApiGateway, HttpRequest
from local_stack.lambda_runtime import LambdaRuntime
from local_stack.server import GatewayServer


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "console"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "js" / "main.js").write_text("export {};")
    (root / "notes.txt").write_text("not a console asset")
    (tmp_path / "secret.json").write_text('{"key": "outside the folder"}')
    return root


def get(console: ConsoleFiles, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    response = console.handle(HttpRequest(method, path, [], b"", "127.0.0.1"))
    return response.status, dict(response.headers), response.body


def test_the_root_is_the_index_with_the_security_headers(site: Path) -> None:
    status, headers, body = get(ConsoleFiles(site), "/")

    assert status == 200
    assert body == b"<!doctype html><title>console</title>"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-cache"
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self';" in policy


def test_modules_are_served_as_javascript(site: Path) -> None:
    status, headers, body = get(ConsoleFiles(site), "/js/main.js")

    assert (status, headers["Content-Type"], body) == (200, "text/javascript; charset=utf-8", b"export {};")


def test_config_tells_the_console_the_api_is_on_the_same_origin(site: Path) -> None:
    status, headers, body = get(ConsoleFiles(site), "/config.json")

    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(body) == {"apiUrl": ""}


@pytest.mark.parametrize(
    "path",
    ["/../secret.json", "/%2e%2e/secret.json", "/js/../../secret.json", "/notes.txt", "/missing.js", "/js", "/%00"],
)
def test_nothing_outside_the_console_or_of_another_kind_is_served(site: Path, path: str) -> None:
    status, headers, body = get(ConsoleFiles(site), path)

    assert status == 404
    assert b"outside the folder" not in body
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_only_reads_are_served(site: Path) -> None:
    status, headers, _ = get(ConsoleFiles(site), "/", method="POST")

    assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_the_server_sends_api_paths_to_the_gateway_and_the_rest_to_the_console(site: Path) -> None:
    runtime = LambdaRuntime(FUNCTIONS, {function.name: lambda event, context: {} for function in FUNCTIONS})
    gateway = ApiGateway(ROUTES, runtime.invoke, AUTHORIZER.name)
    server = GatewayServer(("127.0.0.1", 0), gateway, MAX_BODY_BYTES, ConsoleFiles(site))
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        page = requests.get(f"{base}/", timeout=5)
        api = requests.get(f"{base}/api/v1/workspaces", timeout=5)
    finally:
        server.shutdown()
        serving.join()
        server.server_close()

    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert api.status_code == 401  # the gateway's authorizer, not a file
    assert "Content-Security-Policy" not in api.headers


def test_every_file_of_the_real_console_has_a_content_type() -> None:
    console = Path(__file__).resolve().parents[2] / "console"
    suffixes = {path.suffix for path in console.rglob("*") if path.is_file()}

    assert suffixes and suffixes <= {".html", ".js", ".css"}
