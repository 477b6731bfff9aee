"""The web console in a real browser against the local stack: every path the seeds describe "via UI"."""

import re
import uuid

import requests
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.browser.conftest import Tenant, screenshot, sign_in, unique
from tests.loopback_providers import loopback_provider


def row(page: Page, name: str) -> Locator:
    return page.locator("table.list tbody tr", has=page.get_by_role("link", name=name, exact=True))


def test_sign_in_keeps_the_key_in_this_tab_only(page: Page, tenant: Tenant) -> None:
    page.goto(f"{tenant.base_url}/")
    screenshot(page, "sign-in")
    page.get_by_label("API key").fill("vmx_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator('[data-field="apiKey"] .field-error')).to_have_text("Unauthorized")

    sign_in(page, tenant)

    assert tenant.api_key not in page.url
    assert page.evaluate("sessionStorage.getItem('vmx.apiKey')") == tenant.api_key
    assert page.evaluate("localStorage.length") == 0
    expect(page.get_by_label("Workspace", exact=True)).to_have_value(tenant.workspace_id)
    expect(page.get_by_label("Environment", exact=True)).to_have_value(tenant.environment_id)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_create_through_the_form_generated_from_the_provider_schema(page: Page, tenant: Tenant) -> None:
    name = unique("openai")
    secret = f"sk-console-{uuid.uuid4().hex}"
    sign_in(page, tenant)
    page.get_by_role("link", name="Create connection").first.click()

    # The form follows the provider: Bedrock's has a region, role and optional nested settings.
    page.get_by_label("Provider").select_option("aws-bedrock")
    expect(page.get_by_label("Region", exact=True)).to_be_visible()
    expect(page.get_by_label("Secret access key (optional)")).to_have_attribute("type", "password")
    expect(page.get_by_label("Performance config")).not_to_be_checked()

    page.get_by_label("Provider").select_option("openai")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Description (optional)").fill("Production traffic")
    expect(page.get_by_label("API key")).to_have_attribute("type", "password")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Add limit").click()
    page.locator("[data-row='0']").get_by_label("Requests").fill("100")
    page.locator("[data-row='0']").get_by_label("Tokens").fill("50000")
    page.get_by_role("button", name="Add limit").click()
    page.locator("[data-row='1']").get_by_label("Period").select_option("day")
    page.locator("[data-row='1']").get_by_label("Requests").fill("5000")
    page.locator("[data-row='1']").get_by_label("Per source IP").check()
    page.get_by_label("Allowed models (optional)").fill("gpt-4o\ngpt-4o-mini")
    screenshot(page, "create-connection")
    page.get_by_role("button", name="Create connection").click()

    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.locator(".toast")).to_have_text(f"Created {name}.")
    stored = requests.get(tenant.connections_url, headers=tenant.headers, timeout=10).json()["items"]
    created = next(item for item in stored if item["name"] == name)
    assert created["description"] == "Production traffic"
    assert created["capacity"] == [
        {"period": "minute", "requests": 100, "tokens": 50000, "enabled": True, "dimension": None},
        {"period": "day", "requests": 5000, "tokens": None, "enabled": True, "dimension": "source-ip"},
    ]
    assert created["allowedModels"] == ["gpt-4o", "gpt-4o-mini"]
    expect(page.locator(".card", has_text="Provider configuration")).to_contain_text("stored, encrypted")
    assert secret not in page.content()
    assert "********" not in page.content()

    page.get_by_role("link", name="AI connections", exact=True).click()
    expect(row(page, name)).to_contain_text("100 req · 50K tok /min; 5K req /day per IP")


def test_an_api_validation_error_shows_next_to_its_field(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/new")
    page.get_by_label("Name", exact=True).fill(unique("bedrock"))
    page.get_by_label("Provider").select_option("aws-bedrock")
    page.get_by_label("Region", exact=True).fill("moon-base-1")
    page.get_by_role("button", name="Create connection").click()

    region = page.locator('[data-field="config.region"]')
    expect(region.locator(".field-error")).to_contain_text("String should match pattern")
    expect(region.get_by_label("Region", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".form-errors .error-message")).to_contain_text("config.region: String should match pattern")
    screenshot(page, "validation-error")

    # The next attempt clears what was fixed and shows what is wrong now.
    page.get_by_label("Region", exact=True).fill("us-east-1")
    page.get_by_role("button", name="Add limit").click()  # a row with neither requests nor tokens
    page.get_by_role("button", name="Create connection").click()
    expect(page.locator("[data-row='0'] .field-error")).to_have_text("give requests, tokens or both")
    expect(region.locator(".field-error")).to_have_count(0)
    expect(region.get_by_label("Region", exact=True)).not_to_have_attribute("aria-invalid", "true")

    page.locator("[data-row='0']").get_by_label("Requests").fill("10")
    page.get_by_label("IAM role ARN (optional)").fill("arn:aws:iam::123456789012:role/bedrock")
    page.get_by_role("button", name="Create connection").click()
    expect(page.get_by_role("button", name="Delete")).to_be_visible()


def test_a_taken_name_is_refused_with_the_api_message(page: Page, tenant: Tenant) -> None:
    taken = tenant.create({"name": unique("groq"), "provider": "groq", "config": {"apiKey": "gsk-1"}})
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/new")
    page.get_by_label("Name", exact=True).fill(str(taken["name"]).upper())
    page.get_by_label("API key").fill("sk-1")
    page.get_by_role("button", name="Create connection").click()
    expect(page.locator(".form-errors")).to_contain_text(
        f"an AI connection named '{str(taken['name']).upper()}' already exists"
    )


def test_quick_add_creates_one_connection_per_key_and_reports_failures(page: Page, tenant: Tenant) -> None:
    anthropic, groq = unique("claude"), unique("groq")
    taken = tenant.create({"name": unique("taken"), "provider": "openai", "config": {"apiKey": "sk-1"}})
    sign_in(page, tenant)
    page.get_by_role("link", name="Quick add").click()
    page.get_by_label("Anthropic API key").fill("sk-ant-quick")
    page.get_by_label("Anthropic connection name").fill(anthropic)
    page.get_by_label("Groq API key").fill("gsk-quick")
    page.get_by_label("Groq connection name").fill(groq)
    page.get_by_role("button", name="Create connections").click()

    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", level=2)).to_have_text("Created 2 connections")
    expect(dialog.get_by_role("link", name=anthropic)).to_be_visible()
    expect(dialog.get_by_role("link", name=groq)).to_be_visible()
    expect(dialog).to_contain_text("100 req · 100K tok /min; 10K req /day")
    screenshot(page, "quick-add-result")
    dialog.get_by_role("button", name="View connections").click()
    expect(row(page, anthropic)).to_contain_text("Anthropic")
    expect(row(page, groq)).to_contain_text("Groq")

    # One that fails (its name is taken) is reported with the API's message; the other is created.
    gemini = unique("gemini")
    page.get_by_role("link", name="Quick add").click()
    page.get_by_label("OpenAI API key").fill("sk-again")
    page.get_by_label("OpenAI connection name").fill(str(taken["name"]))
    page.get_by_label("Gemini API key").fill("gemini-key")
    page.get_by_label("Gemini connection name").fill(gemini)
    page.get_by_role("button", name="Create connections").click()
    expect(dialog.get_by_role("heading", level=2)).to_have_text("Created 1, 1 failed")
    expect(dialog.locator(".failed")).to_contain_text(f"an AI connection named '{taken['name']}' already exists")
    expect(dialog.get_by_role("link", name=gemini)).to_be_visible()


def test_quick_add_proposes_names_that_are_free(page: Page, tenant: Tenant) -> None:
    # Only this test of the module's workspace names connections so.
    tenant.create({"name": "perplexity", "provider": "perplexity", "config": {"apiKey": "pplx-1"}})
    tenant.create({"name": "Perplexity-2", "provider": "perplexity", "config": {"apiKey": "pplx-2"}})
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/quick-add")

    expect(page.get_by_label("Perplexity connection name")).to_have_value("perplexity-3")


def test_quick_add_needs_at_least_one_key(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/quick-add")
    page.get_by_role("button", name="Create connections").click()
    expect(page.get_by_role("alert")).to_have_text("Paste at least one API key.")


def test_edit_capacity_keeps_the_stored_secret(page: Page, tenant: Tenant) -> None:
    connection = tenant.create(
        {
            "name": unique("edit"),
            "provider": "openai",
            "config": {"apiKey": "sk-stays"},
            "capacity": [{"period": "minute", "requests": 100}],
        }
    )
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}")
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("API key")).to_have_value("")
    expect(page.get_by_label("API key")).to_have_attribute("placeholder", "Stored; leave empty to keep it")
    page.locator("[data-row='0']").get_by_label("Requests").fill("250")
    page.get_by_role("button", name="Add limit").click()
    page.locator("[data-row='1']").get_by_label("Period").select_option("hour")
    page.locator("[data-row='1']").get_by_label("Tokens").fill("1000000")
    screenshot(page, "edit-connection")
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".toast")).to_have_text(f"Saved {connection['name']}.")
    configured = page.locator(".configured tbody tr")
    expect(configured.nth(0)).to_contain_text("250")
    expect(configured.nth(1)).to_contain_text("1,000,000")
    stored = tenant.get(connection["connectionId"]).json()
    assert stored["version"] == 2
    assert stored["credentialsUpdatedAt"] == connection["credentialsUpdatedAt"]  # the key was not resent


def test_a_stale_edit_says_so_and_offers_a_reload(page: Page, tenant: Tenant) -> None:
    connection = tenant.create({"name": unique("stale"), "provider": "openai", "config": {"apiKey": "sk-1"}})
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}/edit")
    page.get_by_label("Description (optional)").fill("mine")

    changed = requests.patch(
        f"{tenant.connections_url}/{connection['connectionId']}",
        json={"description": "theirs"},
        headers=tenant.headers,
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    page.get_by_role("button", name="Save").click()

    errors = page.locator(".form-errors")
    expect(errors).to_contain_text("Someone else changed this connection")
    screenshot(page, "stale-edit")
    errors.get_by_role("button", name="Reload").click()
    expect(page.get_by_label("Description (optional)")).to_have_value("theirs")
    assert tenant.get(connection["connectionId"]).json()["description"] == "theirs"


def test_delete_asks_for_the_connection_name(page: Page, tenant: Tenant) -> None:
    connection = tenant.create({"name": unique("doomed"), "provider": "perplexity", "config": {"apiKey": "pplx-1"}})
    name = str(connection["name"])
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}")
    page.get_by_role("button", name="Delete").click()

    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", level=2)).to_have_text(f"Delete “{name}”?")
    confirm = dialog.get_by_role("button", name=f"Delete {name}")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("Connection name").fill(name[:-1])
    expect(confirm).to_be_disabled()
    screenshot(page, "delete-confirmation")
    dialog.get_by_role("button", name="Cancel").click()
    assert tenant.get(connection["connectionId"]).status_code == 200

    page.get_by_role("button", name="Delete").click()
    dialog.get_by_label("Connection name").fill(name)
    confirm.click()
    expect(page.locator(".toast")).to_have_text(f"Deleted {name}.")
    expect(page.get_by_role("heading", name="AI connections")).to_be_visible()
    expect(row(page, name)).to_have_count(0)
    assert tenant.get(connection["connectionId"]).status_code == 404


def test_search_and_provider_filter(page: Page, tenant: Tenant) -> None:
    tag = uuid.uuid4().hex[:6]
    tenant.create({"name": f"alpha-{tag}", "provider": "openai", "config": {"apiKey": "sk-1"}})
    tenant.create(
        {"name": f"beta-{tag}", "provider": "anthropic", "config": {"apiKey": "sk-2"}, "description": "search me"}
    )
    sign_in(page, tenant)
    expect(row(page, f"beta-{tag}")).to_be_visible()
    screenshot(page, "connections")

    page.get_by_label("Search connections").fill(f"alpha-{tag}")
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    page.get_by_label("Search connections").fill("SEARCH ME")
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    expect(row(page, f"beta-{tag}")).to_be_visible()
    page.get_by_label("Search connections").fill("")

    page.get_by_label("Provider").select_option("anthropic")
    expect(row(page, f"beta-{tag}")).to_be_visible()
    expect(row(page, f"alpha-{tag}")).to_have_count(0)
    for provider_cell in page.locator("table.list tbody tr td[data-label='Provider']").all():
        expect(provider_cell).to_have_text("Anthropic")
    assert page.url.endswith("?provider=anthropic")
    page.reload()
    expect(page.get_by_label("Provider")).to_have_value("anthropic")


def test_connection_page_shows_usage_utilization_and_discovered_capacity(page: Page, tenant: Tenant) -> None:
    with loopback_provider("openai") as provider:
        connection = tenant.create(
            {
                "name": unique("busy"),
                "provider": "openai",
                "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url},
                # A lifetime window never rolls over between the request and the page, as a minute can.
                "capacity": [
                    {"period": "minute", "requests": 20000, "tokens": 100000},
                    {"period": "lifetime", "requests": 1000000},
                ],
            }
        )
        base = tenant.connections_url.rsplit("/ai-connections", 1)[0]
        answered = requests.post(
            f"{base}/chat/completions",
            json={"model": f"{connection['name']}/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers=tenant.headers,
            timeout=20,
        )
        assert answered.status_code == 200, answered.text

    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}")
    lifetime = page.locator(".window", has=page.get_by_role("heading", name="lifetime", exact=True))
    expect(lifetime).to_contain_text("1 of 1,000,000 requests")
    # Usage and discovered capacity arrive through the event bus within a second or two.
    for _ in range(30):
        if page.locator(".discovered-model").count() and page.locator(".totals dd").first.inner_text() == "1":
            break
        page.wait_for_timeout(500)
        page.reload()
        page.locator(".totals").wait_for()
    expect(page.locator(".discovered-model h4")).to_have_text("gpt-4o-mini")
    expect(page.locator(".discovered-model")).to_contain_text("10,000")
    # The loopback provider allows 10,000 requests a minute: the configured 20,000 can never be reached.
    expect(page.locator(".warnings li")).to_have_text(
        "20,000 requests per minute is above the 10,000 gpt-4o-mini allows: "
        "the provider will refuse requests before this limit is reached."
    )
    expect(page.locator(".totals > div").first).to_have_text(re.compile(r"^Requests\s*1$"))
    expect(page.locator("svg.chart .series-ok").first).to_be_attached()
    screenshot(page, "connection")


def test_the_layout_fits_a_narrow_window(page: Page, tenant: Tenant) -> None:
    connection = tenant.create(
        {
            "name": unique("narrow"),
            "provider": "anthropic",
            "config": {"apiKey": "sk-1"},
            "capacity": [
                {"period": "minute", "requests": 10, "tokens": 10000, "dimension": "source-ip"},
                {"period": "lifetime", "requests": 10**7, "tokens": 10**9, "dimension": "source-ip", "enabled": False},
            ],
        }
    )
    page.set_viewport_size({"width": 320, "height": 844})
    sign_in(page, tenant)
    fits = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    expect(row(page, str(connection["name"]))).to_be_visible()
    assert page.evaluate(fits)
    screenshot(page, "narrow-connections", full_page=False)
    for path in ("", "/edit"):
        page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}{path}")
        page.get_by_role("heading", name=re.compile(str(connection["name"]))).wait_for()
        assert page.evaluate(fits), f"horizontal scrolling on #/connections/<id>{path}"
    screenshot(page, "narrow-edit")


def test_a_key_that_sees_several_workspaces_picks_one(page: Page, tenant: Tenant, local_stack: dict[str, str]) -> None:
    mine = tenant.create({"name": unique("picked"), "provider": "groq", "config": {"apiKey": "gsk-1"}})
    platform = Tenant(tenant.base_url, tenant.workspace_id, tenant.environment_id, local_stack["apiKey"])
    sign_in(page, platform)

    page.get_by_label("Workspace", exact=True).select_option(tenant.workspace_id)

    expect(page.get_by_label("Environment", exact=True)).to_have_value(tenant.environment_id)
    expect(row(page, str(mine["name"]))).to_be_visible()
    page.reload()
    expect(row(page, str(mine["name"]))).to_be_visible()  # the choice outlives a reload of the tab


def test_a_revoked_key_signs_the_console_out_with_the_api_message(page: Page, tenant: Tenant) -> None:
    admin = {"Authorization": f"Bearer {tenant.api_key}"}
    keys_url = f"{tenant.base_url}/api/v1/workspaces/{tenant.workspace_id}/api-keys"
    issued = requests.post(keys_url, json={"name": "short-lived", "role": "viewer"}, headers=admin, timeout=10).json()
    short_lived = Tenant(tenant.base_url, tenant.workspace_id, tenant.environment_id, issued["apiKey"])
    sign_in(page, short_lived)

    revoked = requests.delete(f"{keys_url}/{issued['keyId']}", headers=admin, timeout=10)
    assert revoked.status_code == 204, revoked.text
    page.get_by_label("Provider").select_option("openai")  # the list is read again

    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator('[data-field="apiKey"] .field-error')).to_have_text("Signed out: Unauthorized")
    assert page.evaluate("sessionStorage.getItem('vmx.apiKey')") is None


def test_leaving_an_edit_with_unsaved_changes_asks_first(page: Page, tenant: Tenant) -> None:
    connection = tenant.create({"name": unique("careful"), "provider": "openai", "config": {"apiKey": "sk-1"}})
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}/edit")
    page.get_by_label("Description (optional)").fill("half-typed")
    asked: list[str] = []

    def decline(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    with page.expect_event("dialog"):  # the question comes after the click returns, from the hashchange
        page.get_by_role("link", name="AI connections", exact=True).click()
    expect(page.get_by_label("Description (optional)")).to_have_value("half-typed")
    assert asked == ["Leave this page? Your changes are not saved."]
    assert page.url.endswith("/edit")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name=str(connection["name"]), exact=True).click()
    expect(page.get_by_role("button", name="Delete")).to_be_visible()
    assert tenant.get(connection["connectionId"]).json()["description"] is None


def test_a_number_the_browser_cannot_read_is_refused_before_anything_is_sent(page: Page, tenant: Tenant) -> None:
    connection = tenant.create(
        {
            "name": unique("typo"),
            "provider": "openai",
            "config": {"apiKey": "sk-1"},
            "capacity": [{"period": "minute", "requests": 100, "tokens": 1000}],
        }
    )
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}/edit")
    page.locator("[data-row='0']").get_by_label("Tokens").press_sequentially("2000e")
    page.get_by_role("button", name="Save").click()

    expect(page.locator("[data-row='0'] .field-error")).to_have_text("is not a number")
    assert tenant.get(connection["connectionId"]).json()["capacity"][0]["tokens"] == 1000


def test_stored_keys_can_be_given_up_for_a_role(page: Page, tenant: Tenant) -> None:
    role = "arn:aws:iam::123456789012:role/bedrock"
    keys = {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret", "sessionToken": "token"}
    connection = tenant.create(
        {"name": unique("keys"), "provider": "aws-bedrock", "config": {"region": "us-east-1", **keys}}
    )
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}/edit")
    for field in ("Access key ID", "Secret access key", "Session token"):
        page.get_by_label(f"Remove the stored {field}").check()
    page.get_by_label("IAM role ARN (optional)").fill(role)
    page.get_by_label("External ID (optional)").fill("vmx-7d1c")
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".toast")).to_have_text(f"Saved {connection['name']}.")
    assert tenant.get(connection["connectionId"]).json()["config"] == {
        "region": "us-east-1",
        "iamRoleArn": role,
        "externalId": "vmx-7d1c",
    }


def test_a_required_choice_in_a_nested_setting_starts_unchosen(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/connections/new")
    page.get_by_label("Name", exact=True).fill(unique("nested"))
    page.get_by_label("Provider").select_option("aws-bedrock")
    page.get_by_label("Region", exact=True).fill("us-east-1")
    page.get_by_label("IAM role ARN (optional)").fill("arn:aws:iam::123456789012:role/bedrock")
    page.get_by_label("Performance config").check()
    expect(page.get_by_label("Latency")).to_have_value("")
    page.get_by_role("button", name="Create connection").click()

    latency = page.locator('[data-field="config.performanceConfig.latency"]')
    expect(latency.locator(".field-error")).to_have_text("Field required")
    page.get_by_label("Latency").select_option("optimized")
    page.get_by_role("button", name="Create connection").click()
    expect(page.get_by_role("button", name="Delete")).to_be_visible()


def test_the_test_button_tells_what_was_checked_and_an_edit_is_tested_before_it_is_saved(
    page: Page, tenant: Tenant
) -> None:
    with loopback_provider("openai") as provider:
        connection = tenant.create(
            {
                "name": unique("tested"),
                "provider": "openai",
                "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url},
            }
        )
        sign_in(page, tenant)
        page.goto(f"{tenant.base_url}/#/connections/{connection['connectionId']}")

        page.get_by_role("button", name="Test").click()
        result = page.get_by_role("status").locator(".test-result")
        expect(result).to_contain_text("Test passed")
        expect(result).to_contain_text("OpenAI accepted the credentials and lists 2 models")
        expect(result).to_contain_text(f"Checked: GET {provider.base_url}/models with the API key")
        screenshot(page, "connection-test")

        page.get_by_role("link", name="Edit").click()
        page.get_by_label("API key").fill("sk-not-this-one")
        page.get_by_role("button", name="Test").click()
        expect(page.get_by_role("status").locator(".test-result")).to_contain_text("Credentials refused")

        assert [request.headers["authorization"] for request in provider.requests] == [
            f"Bearer {provider.api_key}",
            "Bearer sk-not-this-one",
        ]
    # the edit was tested, not saved
    assert tenant.get(connection["connectionId"]).json()["version"] == 1


def test_a_new_connection_is_tested_from_the_form_before_it_is_created(page: Page, tenant: Tenant) -> None:
    with loopback_provider("anthropic") as provider:
        sign_in(page, tenant)
        page.goto(f"{tenant.base_url}/#/connections/new")
        page.get_by_label("Name", exact=True).fill(unique("draft"))
        page.get_by_label("Provider").select_option("anthropic")
        page.get_by_label("API key").fill(provider.api_key or "")
        page.get_by_label("Base URL").fill(provider.base_url)

        page.get_by_role("button", name="Test").click()

        expect(page.get_by_role("status").locator(".test-result")).to_contain_text("Test passed")
        assert [request.path for request in provider.requests] == ["/v1/models?limit=1000"]
    listed = requests.get(tenant.connections_url, headers=tenant.headers, timeout=10).json()["items"]
    assert not [item for item in listed if item["name"].startswith("draft")]


def test_api_keys_are_created_shown_once_listed_and_revoked(page: Page, tenant: Tenant) -> None:
    name = unique("ci-bot")
    sign_in(page, tenant)
    page.get_by_role("link", name="API keys").click()

    # Create an editor key limited to the one environment
    page.get_by_label("Name").fill(name)
    page.get_by_label("Role").select_option("editor")
    page.get_by_label("Every environment, present and future").uncheck()
    page.get_by_label("production").check()
    page.get_by_role("button", name="Create API key").click()

    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", level=2)).to_have_text(f"API key {name} created")
    issued = dialog.get_by_label("The new API key").input_value()
    assert issued.startswith("vmx_")
    screenshot(page, "api-key-created")
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_role("dialog")).to_have_count(0)

    # It works, as an editor of that environment only
    as_issued = {"Authorization": f"Bearer {issued}"}
    assert requests.get(tenant.connections_url, headers=as_issued, timeout=10).status_code == 200
    elsewhere = tenant.connections_url.replace(tenant.environment_id, str(uuid.uuid4()))
    assert requests.get(elsewhere, headers=as_issued, timeout=10).status_code == 403
    listed = page.locator("table.list tbody tr", has_text=name)
    expect(listed).to_contain_text("editor")
    expect(listed).to_contain_text("production")
    expect(listed).to_contain_text("Active")

    # Revoke it: refused from then on
    listed.get_by_role("button", name=f"Revoke {name}").click()
    page.get_by_role("dialog").get_by_role("button", name=f"Revoke {name}").click()
    expect(page.locator(".toast")).to_have_text(f"Revoked {name}.")
    expect(page.locator("table.list tbody tr", has_text=name)).to_contain_text("Revoked")
    assert requests.get(tenant.connections_url, headers=as_issued, timeout=10).status_code == 401


def test_a_key_without_a_name_is_refused_next_to_the_field(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant)
    page.goto(f"{tenant.base_url}/#/api-keys")
    page.get_by_role("button", name="Create API key").click()

    expect(page.locator("[data-field='name'] .field-error")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
