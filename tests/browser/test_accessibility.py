"""The console's pages checked by axe-core (the engine behind most accessibility audits) in the browser:
labels, names, roles, contrast and structure, on a laptop screen and a narrow window."""

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LAPTOP, Tenant, sign_in
from tests.local_stack_process import REPO_ROOT

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def audited(browser: Browser) -> Iterator[Page]:
    """A page on which axe can be injected: the console's CSP rightly refuses scripts it did not serve."""
    if not AXE.exists():
        pytest.fail(f"no {AXE}: `make install` installs axe-core from package-lock.json", pytrace=False)
    context = browser.new_context(viewport=LAPTOP, bypass_csp=True)
    yield context.new_page()
    context.close()


def violations(page: Page) -> list[str]:
    page.add_script_tag(path=AXE)
    found: list[dict[str, Any]] = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at {node['target']}"
        for violation in found
        for node in violation["nodes"]
    ]


@pytest.mark.parametrize("width", [LAPTOP["width"], 390])
def test_every_page_passes_axe(audited: Page, tenant: Tenant, width: int) -> None:
    connection = tenant.create(
        {
            "name": f"audited-{width}",
            "provider": "openai",
            "config": {"apiKey": "sk-1"},
            "capacity": [
                {"period": "minute", "requests": 10, "tokens": 1000, "dimension": "source-ip"},
                {"period": "lifetime", "requests": 1000},
            ],
            # its rows in the edit form, its table and per-class meters on the connection page
            "prioritization": {
                "classes": [{"name": "production", "guaranteedPercent": 60}, {"name": "batch", "maximumPercent": 40}],
                "defaultClass": "batch",
            },
            "allowedModels": ["gpt-4o"],
        }
    )
    audited.set_viewport_size({"width": width, "height": 800})
    audited.goto(f"{tenant.base_url}/")
    audited.get_by_label("API key").wait_for()
    found = {"sign-in": violations(audited)}
    sign_in(audited, tenant)
    found["list"] = violations(audited)
    pages = {
        "create": ("#/connections/new", "Create connection"),
        "quick add": ("#/connections/quick-add", "Quick add"),
        "connection": (f"#/connections/{connection['connectionId']}", str(connection["name"])),
        "edit": (f"#/connections/{connection['connectionId']}/edit", f"Edit {connection['name']}"),
        "api keys": ("#/api-keys", None),
    }
    for name, (path, heading) in pages.items():
        audited.goto(f"{tenant.base_url}/{path}")
        if heading is None:
            audited.get_by_role("heading", level=1).wait_for()
        else:
            audited.get_by_role("heading", name=heading, exact=True, level=1).wait_for()
        expect(audited.locator(".loading:not([hidden])")).to_have_count(0)
        found[name] = violations(audited)
    audited.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}")
    audited.get_by_role("button", name="Delete").click()
    found["delete dialog"] = violations(audited)
    audited.goto(f"{tenant.base_url}/#/api-keys")
    audited.get_by_label("Name").fill(f"audited-{width}")
    audited.get_by_role("button", name="Create API key").click()
    audited.get_by_role("dialog").wait_for()
    found["new key dialog"] = violations(audited)
    audited.get_by_role("dialog").get_by_role("button", name="Done").click()
    audited.get_by_role("button", name=f"Change class of audited-{width}").click()
    audited.get_by_role("dialog").wait_for()
    found["change class dialog"] = violations(audited)
    # last: the form's unsaved change would hold the next navigation
    audited.goto(f"{tenant.base_url}/#/connections/new")
    audited.get_by_label("Provider").select_option("aws-bedrock")
    found["create, bedrock"] = violations(audited)

    assert {name: problems for name, problems in found.items() if problems} == {}
