"""The console as it runs in AWS: served from one origin, calling the API on another, which allows that
origin alone (preflights, the gateway's own errors, and ETag readable for conditional edits)."""

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from playwright.sync_api import Page, expect

from infra.system import CONSOLE_DIR, MAX_BODY_BYTES
from local_stack.console import ConsoleFiles
from local_stack.gateway import ApiGateway
from local_stack.server import GatewayServer
from tests.local_stack_process import REPO_ROOT, free_port, running_local_stack


@dataclass(frozen=True)
class Deployment:
    console_url: str
    api: dict[str, str]  # the stack's bootstrap.json

    @property
    def connections_url(self) -> str:
        return (
            f"{self.api['baseUrl']}/api/v1/workspaces/{self.api['workspaceId']}"
            f"/environments/{self.api['environmentId']}/ai-connections"
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api['apiKey']}"}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    console_port = free_port()
    console_origin = f"http://127.0.0.1:{console_port}"
    with running_local_stack(tmp_path_factory.mktemp("cross_origin"), "--console-origin", console_origin) as api:
        # A server of the console's files alone, as CloudFront is: no API routes on this origin.
        no_api = ApiGateway((), lambda name, event: {}, authorizer_function="none")
        console = ConsoleFiles(REPO_ROOT / CONSOLE_DIR, api_url=api["baseUrl"])
        server = GatewayServer(("127.0.0.1", console_port), no_api, MAX_BODY_BYTES, console)
        serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        serving.start()
        try:
            yield Deployment(console_origin, api)
        finally:
            server.shutdown()
            serving.join()
            server.server_close()


def sign_in(page: Page, deployment: Deployment, api_key: str) -> None:
    page.goto(f"{deployment.console_url}/")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()


def test_the_api_refusal_is_readable_across_origins(page: Page, deployment: Deployment) -> None:
    sign_in(page, deployment, "vmx_wrong")

    expect(page.locator('[data-field="apiKey"] .field-error')).to_have_text("Unauthorized")


def test_create_and_a_conditional_edit_work_across_origins(page: Page, deployment: Deployment) -> None:
    name = f"cross-{uuid.uuid4().hex[:6]}"
    sign_in(page, deployment, deployment.api["apiKey"])
    page.get_by_role("heading", name="AI connections").wait_for()
    page.get_by_role("link", name="Create connection").first.click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("API key").fill("sk-cross")
    page.get_by_role("button", name="Create connection").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Description (optional)").fill("mine")
    connection_id = page.url.split("/connections/")[1].removesuffix("/edit")
    changed = requests.patch(
        f"{deployment.connections_url}/{connection_id}",
        json={"description": "theirs"},
        headers=deployment.headers,
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    page.get_by_role("button", name="Save").click()

    # Only a readable ETag, sent back as If-Match, makes the API refuse the stale edit.
    expect(page.locator(".form-errors")).to_contain_text("Someone else changed this connection")
    assert (
        requests.get(f"{deployment.connections_url}/{connection_id}", headers=deployment.headers, timeout=10).json()[
            "description"
        ]
        == "theirs"
    )
