"""Browser fixtures: Debian's Chromium driven by Playwright against the real local stack.

Playwright's own browser download cannot work here, so the browser is the system's (CHROMIUM_PATH,
/usr/bin/chromium by default; `make install` installs it). Each test gets a fresh browser context,
so a fresh session storage, and fails if the page throws or breaks its content security policy."""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

from tests.local_stack_process import running_local_stack

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Without the networking flags Chromium reaches for Google's hosts, which a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
LAPTOP = ViewportSize(width=1366, height=800)
# A failed fetch (every 4xx the tests provoke) is logged by Chromium; anything else logged as an error is a defect.
EXPECTED_CONSOLE_ERROR = "Failed to load resource"


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Every request is authorized afresh, so the console meets a revoked key's 401 at once (in AWS, and by
    default locally, the authorizer's answer is kept for a minute)."""
    with running_local_stack(tmp_path_factory.mktemp("local_stack"), "--authorizer-cache-seconds", "0") as bootstrap:
        yield bootstrap


@dataclass(frozen=True)
class Tenant:
    """A workspace of its own per test module, with an admin key that sees only it."""

    base_url: str
    workspace_id: str
    environment_id: str
    api_key: str

    @property
    def connections_url(self) -> str:
        return (
            f"{self.base_url}/api/v1/workspaces/{self.workspace_id}/environments/{self.environment_id}/ai-connections"
        )

    @property
    def api_keys_url(self) -> str:
        return f"{self.base_url}/api/v1/workspaces/{self.workspace_id}/api-keys"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(self.connections_url, json=body, headers=self.headers, timeout=10)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def get(self, connection_id: object) -> requests.Response:
        return requests.get(f"{self.connections_url}/{connection_id}", headers=self.headers, timeout=10)


@pytest.fixture(scope="module")
def tenant(local_stack: dict[str, str]) -> Tenant:
    base = local_stack["baseUrl"]
    admin = {"Authorization": f"Bearer {local_stack['apiKey']}"}

    def post(path: str, body: dict[str, Any]) -> dict[str, str]:
        response = requests.post(f"{base}{path}", json=body, headers=admin, timeout=10)
        assert response.status_code == 201, response.text
        created: dict[str, str] = response.json()
        return created

    workspace = post("/api/v1/workspaces", {"name": f"Console {uuid.uuid4().hex[:6]}"})
    workspace_path = f"/api/v1/workspaces/{workspace['workspaceId']}"
    environment = post(f"{workspace_path}/environments", {"name": "production"})
    key = post(f"{workspace_path}/api-keys", {"name": "console tests", "role": "admin"})
    return Tenant(base, workspace["workspaceId"], environment["environmentId"], key["apiKey"])


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM_PATH).exists():
        pytest.fail(f"no Chromium at {CHROMIUM_PATH}: `make install` installs Debian's chromium", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=LAPTOP)
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and EXPECTED_CONSOLE_ERROR not in message.text:
            problems.append(f"console error: {message.text}")

    opened.on("console", on_console)
    yield opened
    context.close()
    assert problems == [], problems


def screenshot(page: Page, name: str, full_page: bool = True) -> None:
    """Saved for people to look at (the README shows copies); git ignores the folder."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def sign_in(page: Page, tenant: Tenant) -> None:
    page.goto(f"{tenant.base_url}/")
    page.get_by_label("API key").fill(tenant.api_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="AI connections").wait_for()
