"""Capacity priority classes in the console: edited with a connection, shown on its page, given to API keys."""

import re
from typing import Any

import requests
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Tenant, screenshot, sign_in, unique
from tests.loopback_providers import loopback_provider

CLASSES = "[data-field='prioritization.classes']"
PRIORITIZATION = {
    "classes": [
        {"name": "production", "guaranteedPercent": 60, "maximumPercent": 100},
        {"name": "batch", "guaranteedPercent": 0, "maximumPercent": 40},
    ],
    "defaultClass": "batch",
}
PRIORITY_COLUMN = 3  # of the API keys list, after name, role and environments
BAD_NAME = "must be 1 to 32 lower-case letters, digits or '-', and not start with '-'"


def class_row(page: Page, index: int) -> Locator:
    return page.locator(f"{CLASSES} [data-row='{index}']")


def fill_class(page: Page, index: int, name: str, guaranteed: int, maximum: int) -> None:
    row = class_row(page, index)
    row.get_by_label("Class name").fill(name)
    row.get_by_label("Guaranteed %").fill(str(guaranteed))
    row.get_by_label("Maximum %").fill(str(maximum))


def stored(tenant: Tenant, name: str) -> dict[str, Any]:
    listed = requests.get(tenant.connections_url, headers=tenant.headers, timeout=10).json()["items"]
    found: dict[str, Any] = next(item for item in listed if item["name"] == name)
    return found


def test_classes_are_created_in_the_form_with_the_api_refusals_at_their_inputs(page: Page, tenant: Tenant) -> None:
    name = unique("shared")
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("API key").fill("sk-1")
    page.get_by_role("button", name="Add limit").click()
    page.locator("[data-field='capacity'] [data-row='0']").get_by_label("Requests").fill("100")
    page.get_by_role("button", name="Add priority class").click()
    page.get_by_role("button", name="Add priority class").click()
    fill_class(page, 0, "production", 60, 100)
    fill_class(page, 1, "batch", 50, 40)
    expect(class_row(page, 0).get_by_label("Default class")).to_be_checked()  # until another is chosen
    class_row(page, 1).get_by_label("Default class").check()
    page.get_by_role("button", name="Create connection").click()

    # The API's refusals, each where it points: a maximum below its guarantee at that input...
    maximum = class_row(page, 1).locator("td[data-label='Maximum %']")
    expect(maximum.locator(".field-error")).to_have_text(
        "is below guaranteedPercent (50); a class cannot be guaranteed more than it may use"
    )
    expect(maximum.get_by_label("Maximum %")).to_have_attribute("aria-invalid", "true")
    # ...and guarantees that sum above the whole under the classes
    class_row(page, 1).get_by_label("Maximum %").fill("100")
    page.get_by_role("button", name="Create connection").click()
    expect(page.locator(f"{CLASSES} > .field-error")).to_have_text(
        "guaranteedPercent values sum to 110; they may sum to at most 100"
    )
    expect(maximum.locator(".field-error")).to_have_count(0)
    screenshot(page, "priority-classes-refused")

    fill_class(page, 1, "batch", 0, 40)
    page.get_by_role("button", name="Create connection").click()

    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.locator(".configured table.priority-classes tbody tr")).to_have_text(
        [re.compile(r"^production\s*60%\s*100%$"), re.compile(r"^batch\s*default\s*0%\s*40%$")]
    )
    assert stored(tenant, name)["prioritization"] == PRIORITIZATION


def test_an_edit_sends_the_classes_only_when_they_change_and_removing_them_all_sends_null(
    page: Page, tenant: Tenant
) -> None:
    connection = tenant.create(
        {
            "name": unique("classy"),
            "provider": "openai",
            "config": {"apiKey": "sk-1"},
            "capacity": [{"period": "minute", "requests": 100}],
            "prioritization": PRIORITIZATION,
        }
    )
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}/edit")
    expect(class_row(page, 0).get_by_label("Class name")).to_have_value("production")
    expect(class_row(page, 1).get_by_label("Default class")).to_be_checked()

    page.get_by_label("Description (optional)").fill("classes kept")
    with page.expect_request(lambda request: request.method == "PATCH") as untouched:
        page.get_by_role("button", name="Save").click()
    assert untouched.value.post_data_json == {"description": "classes kept"}
    expect(page.locator(".toast")).to_have_text(f"Saved {connection['name']}.")

    page.get_by_role("link", name="Edit").click()
    removes = page.locator(CLASSES).get_by_role("button", name="Remove priority class")
    removes.first.click()
    expect(class_row(page, 0).get_by_label("Default class")).to_be_checked()  # the one left is the default
    removes.first.click()
    expect(page.locator(CLASSES)).to_contain_text("No classes")
    with page.expect_request(lambda request: request.method == "PATCH") as removed:
        page.get_by_role("button", name="Save").click()
    assert removed.value.post_data_json == {"prioritization": None}

    expect(page.locator(".toast")).to_have_text(f"Saved {connection['name']}.")
    expect(page.locator(".configured")).not_to_contain_text("Priority classes")
    assert tenant.get(connection["connectionId"]).json()["prioritization"] is None


def test_a_gateway_key_is_given_a_priority_class_and_a_viewer_key_none(page: Page, tenant: Tenant) -> None:
    name = unique("batch-bot")
    sign_in(page, tenant)
    page.get_by_role("link", name="API keys").click()
    priority_class = page.get_by_label("Priority class (optional)")
    page.get_by_label("Role").select_option("viewer")
    expect(priority_class).to_be_disabled()
    page.get_by_label("Role").select_option("gateway")
    page.get_by_label("Name").fill(name)
    priority_class.fill("Batch Jobs")
    page.get_by_role("button", name="Create API key").click()

    expect(page.locator("[data-field='priorityClass'] .field-error")).to_have_text(BAD_NAME)
    expect(priority_class).to_have_attribute("aria-invalid", "true")
    priority_class.fill("batch")
    page.get_by_role("button", name="Create API key").click()
    page.get_by_role("dialog").get_by_role("button", name="Done").click()

    listed = page.locator("table.list tbody tr", has_text=name)
    expect(listed.locator("td").nth(PRIORITY_COLUMN)).to_have_text("batch")
    unclassed = page.locator("table.list tbody tr", has_text="console tests")
    expect(unclassed.locator("td").nth(PRIORITY_COLUMN)).to_have_text("—")
    expect(priority_class).to_have_value("")  # the form is ready for the next key


def issue_key(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    issued = requests.post(tenant.api_keys_url, json=body, headers=tenant.headers, timeout=10)
    assert issued.status_code == 201, issued.text
    created: dict[str, Any] = issued.json()
    return created


def test_a_keys_class_changes_in_a_dialog_without_a_new_key(page: Page, tenant: Tenant) -> None:
    name = unique("moving-bot")
    key_url = f"{tenant.api_keys_url}/{issue_key(tenant, {'name': name, 'role': 'gateway'})['keyId']}"
    reader = issue_key(tenant, {"name": unique("reader"), "role": "viewer"})

    def stored_class() -> object:
        return requests.get(key_url, headers=tenant.headers, timeout=10).json()["priorityClass"]

    sign_in(page, tenant)
    page.get_by_role("link", name="API keys").click()
    listed = page.locator("table.list tbody tr", has_text=name)
    change = listed.get_by_role("button", name=f"Change class of {name}")
    dialog = page.get_by_role("dialog", name=f"Priority class of “{name}”")
    priority_class = dialog.get_by_label("Priority class")
    save = dialog.get_by_role("button", name="Save")
    # a viewer makes no completions, so has no class to change
    expect(page.locator("table.list tbody tr", has_text=reader["name"]).get_by_role("button")).to_have_text(
        [f"Revoke {reader['name']}"]
    )

    change.click()
    expect(priority_class).to_have_value("")
    priority_class.fill("batch")
    save.click()
    expect(page.locator(".toast")).to_have_text(f"{name} now counts in class batch.")
    expect(listed.locator("td").nth(PRIORITY_COLUMN)).to_have_text("batch")
    expect(change).to_be_focused()  # the button of the redrawn row
    assert stored_class() == "batch"

    change.click()
    expect(priority_class).to_have_value("batch")
    priority_class.fill("Bad Name!")
    save.click()
    expect(dialog.locator("[data-field='priorityClass'] .field-error")).to_have_text(BAD_NAME)
    expect(priority_class).to_have_attribute("aria-invalid", "true")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(change).to_be_focused()
    assert stored_class() == "batch"

    change.click()
    expect(priority_class).to_have_value("batch")  # a fresh dialog, with the stored class and no error
    expect(dialog.locator(".field-error")).to_have_count(0)
    priority_class.fill("")
    save.click()
    expect(page.locator(".toast")).to_have_text(f"{name} now has no priority class.")
    expect(listed.locator("td").nth(PRIORITY_COLUMN)).to_have_text("—")
    assert stored_class() is None


def test_utilization_shows_each_class_used_of_its_maximum_with_its_guarantee(page: Page, tenant: Tenant) -> None:
    issued = issue_key(tenant, {"name": unique("prod-bot"), "role": "gateway", "priorityClass": "production"})
    with loopback_provider("openai") as provider:
        connection = tenant.create(
            {
                "name": unique("shared"),
                "provider": "openai",
                "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url},
                # A lifetime window never rolls over between the requests and the page, as a minute can.
                "capacity": [{"period": "lifetime", "requests": 1000000}],
                "prioritization": PRIORITIZATION,
            }
        )
        base = tenant.connections_url.rsplit("/ai-connections", 1)[0]
        # one completion in the key's class, one in the default class (the tenant's key has none)
        for api_key in (issued["apiKey"], tenant.api_key):
            answered = requests.post(
                f"{base}/chat/completions",
                json={"model": f"{connection['name']}/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=20,
            )
            assert answered.status_code == 200, answered.text

    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}")
    lifetime = page.locator(".window", has=page.get_by_role("heading", name="lifetime", exact=True))
    expect(lifetime.locator(".meter-text").first).to_have_text("2 of 1,000,000 requests")
    production = lifetime.locator(".class-usage[data-class='production']")
    expect(production.get_by_role("meter", name="production requests")).to_have_attribute("aria-valuenow", "1")
    expect(production).to_contain_text("1 of 1,000,000 requests · 600,000 guaranteed, 999,998 left")
    # batch may use 40% at most, which is also all that production's 60% guarantee leaves it
    batch = lifetime.locator(".class-usage[data-class='batch']")
    expect(batch.get_by_role("heading", level=4)).to_have_text(re.compile(r"^batch\s*default$"))
    expect(batch).to_contain_text("1 of 400,000 requests · 0 guaranteed, 399,999 left")
    screenshot(page, "priority-classes")
