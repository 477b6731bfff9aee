"""Secrets and names that would break a header or a log line (items 7 and 14 of issue 11): refused at create
and at update with a 400 naming the field, the secret never in the answer or the logs, nothing stored."""

import logging
import os
import uuid
from typing import Any

import pytest
from pydantic import SecretStr

from tests.functional.api import Api, ApiResponse
from tests.functional.conftest import Tenant
from tests.loopback_providers import loopback_provider
from tests.unit.builders import connection_record
from vmx import wiring
from vmx.settings import ConnectionsSettings
from vmx.storage.connection_store import DynamoConnectionRepository

# One of each kind of character a secret must not hold, placed where a paste or an attacker puts it.
BAD_SECRET_CHARACTERS = {
    "trailing LF": "{}\n",
    "trailing CRLF": "{}\r\n",
    "CR inside": "{}\rX-Injected: 1",
    "LF inside": "{}\nX-Injected: 1",
    "TAB": "{}\tx",
    "NUL": "{}\x00",
    "DEL": "{}\x7f",
    "ESC (C0)": "\x1b[31m{}",
    "NEL U+0085 (C1)": "{}\x85",
    "CSI U+009B (C1)": "{}\x9b",
    "line separator U+2028": "{}\u2028",
    "paragraph separator U+2029": "{}\u2029",
    "non-ASCII letter": "{}é",
    "zero-width space": "{}\u200b",
    "byte order mark": "\ufeff{}",
    "lone surrogate": "{}\ud800",
    "space inside": "{} x",
    "trailing space": "{} ",
    "leading space": " {}",
}
# Every secret field of every kind of provider configuration, with the rest of a valid configuration.
SECRET_FIELDS: list[tuple[str, str, dict[str, str]]] = [
    ("openai", "apiKey", {}),
    ("anthropic", "apiKey", {}),
    ("gemini", "apiKey", {}),
    ("groq", "apiKey", {}),
    ("perplexity", "apiKey", {}),
    (
        "aws-bedrock",
        "accessKeyId",
        {"region": "us-east-1", "secretAccessKey": "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"},
    ),
    ("aws-bedrock", "secretAccessKey", {"region": "us-east-1", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"}),
    (
        "aws-bedrock-invoke",
        "sessionToken",
        {"region": "us-east-1", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "wJalrXUtnFEMIEXAMPLEKEY"},
    ),
]
# Every printable ASCII character but the space: what real keys are made of, all of it accepted.
PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))


def canary() -> str:
    return "sk-CANARY" + uuid.uuid4().hex


def create(tenant: Tenant, provider: str, config: dict[str, Any]) -> ApiResponse:
    return tenant.api.post(tenant.connections_path, {"name": "prod", "provider": provider, "config": config})


def logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    records = " ".join(repr(record.__dict__) for record in caplog.records)
    return " ".join([out, err, caplog.text, records])


def assert_refused_without_the_secret(response: ApiResponse, field: str, secret: str, logs: str) -> None:
    assert response.status == 400, response.text
    assert response.error["code"] == "invalid_request"
    assert response.error["details"][0]["field"] == field
    assert field in response.error["message"]
    assert secret not in response.text
    # the refusal was logged (so the next check looks at real log output), without the secret
    assert "request refused" in logs
    assert secret not in logs


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("shape", BAD_SECRET_CHARACTERS.values(), ids=BAD_SECRET_CHARACTERS.keys())
def test_a_secret_with_a_control_separator_or_non_ascii_character_is_refused_at_create(
    tenant: Tenant, shape: str, logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = canary()

    response = create(tenant, "openai", {"apiKey": shape.format(secret)})

    assert_refused_without_the_secret(response, "config.apiKey", secret, logged(logs, capfd))
    assert tenant.api.get(tenant.connections_path).body["items"] == []


@pytest.mark.parametrize("shape", BAD_SECRET_CHARACTERS.values(), ids=BAD_SECRET_CHARACTERS.keys())
def test_a_secret_with_a_control_separator_or_non_ascii_character_is_refused_at_update(
    tenant: Tenant, shape: str, logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    created = create(tenant, "openai", {"apiKey": "sk-original"}).body
    path = f"{tenant.connections_path}/{created['connectionId']}"
    secret = canary()

    response = tenant.api.patch(path, {"config": {"apiKey": shape.format(secret)}})

    assert_refused_without_the_secret(response, "config.apiKey", secret, logged(logs, capfd))
    stored = tenant.api.get(path).body
    assert (stored["version"], stored["credentialsUpdatedAt"]) == (created["version"], created["credentialsUpdatedAt"])


@pytest.mark.parametrize(("provider", "field", "rest"), SECRET_FIELDS, ids=[f"{p}.{f}" for p, f, _ in SECRET_FIELDS])
@pytest.mark.parametrize("shape", ["{}\n", "{}\x00", "{}\u2028", "{}é"], ids=["LF", "NUL", "U+2028", "non-ASCII"])
def test_every_secret_field_of_every_provider_refuses_them_at_create(
    tenant: Tenant,
    provider: str,
    field: str,
    rest: dict[str, str],
    shape: str,
    logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret = canary()

    response = create(tenant, provider, {**rest, field: shape.format(secret)})

    assert_refused_without_the_secret(response, f"config.{field}", secret, logged(logs, capfd))
    assert tenant.api.get(tenant.connections_path).body["items"] == []


@pytest.mark.parametrize(("provider", "field", "rest"), SECRET_FIELDS, ids=[f"{p}.{f}" for p, f, _ in SECRET_FIELDS])
def test_every_secret_field_of_every_provider_refuses_them_at_update(
    tenant: Tenant,
    provider: str,
    field: str,
    rest: dict[str, str],
    logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    created = create(tenant, provider, {**rest, field: "ValidSecret0123"})
    assert created.status == 201, created.text
    path = f"{tenant.connections_path}/{created.body['connectionId']}"
    secret = canary()

    response = tenant.api.patch(path, {"config": {field: f"{secret}\r\n"}})

    assert_refused_without_the_secret(response, f"config.{field}", secret, logged(logs, capfd))
    stored = tenant.api.get(path).body
    assert stored["version"] == created.body["version"]
    assert stored["credentialsUpdatedAt"] == created.body["credentialsUpdatedAt"]


@pytest.mark.parametrize(("provider", "field", "rest"), SECRET_FIELDS, ids=[f"{p}.{f}" for p, f, _ in SECRET_FIELDS])
def test_secrets_of_printable_ascii_are_accepted_at_create_and_update(
    tenant: Tenant, provider: str, field: str, rest: dict[str, str]
) -> None:
    created = create(tenant, provider, {**rest, field: PRINTABLE})
    assert created.status == 201, created.text
    path = f"{tenant.connections_path}/{created.body['connectionId']}"

    updated = tenant.api.patch(path, {"config": {field: "sk-proj-" + PRINTABLE[::-1]}})

    assert updated.status == 200, updated.text
    assert updated.body["config"][field] == "********"
    assert updated.body["version"] == created.body["version"] + 1


# Names: line and paragraph separators, controls of C0 and C1, format characters (zero-width and bidi ones).
BAD_NAME_CHARACTERS = {
    "U+2028": "\u2028",
    "U+2029": "\u2029",
    "U+0085": "\x85",
    "LF": "\n",
    "TAB": "\t",
    "NUL": "\x00",
    "DEL": "\x7f",
    "right-to-left override U+202E": "\u202e",
    "right-to-left isolate U+2067": "\u2067",
    "zero-width space U+200B": "\u200b",
    "byte order mark U+FEFF": "\ufeff",
    "lone surrogate": "\ud800",
}
# Descriptions may hold newlines and tabs, but not these.
BAD_DESCRIPTION_CHARACTERS = {
    "U+2028": "\u2028",
    "U+2029": "\u2029",
    "U+0085": "\x85",
    "CR": "\r",
    "NUL": "\x00",
    "DEL": "\x7f",
    "ESC": "\x1b",
    "left-to-right embedding U+202A": "\u202a",
    "right-to-left override U+202E": "\u202e",
    "first strong isolate U+2068": "\u2068",
    "lone surrogate": "\ud800",
}


def names_refused(response: ApiResponse, field: str) -> None:
    assert response.status == 400, response.text
    assert response.error["details"][0]["field"] == field
    assert response.error["message"].startswith(f"{field}: ")


@pytest.mark.parametrize("char", BAD_NAME_CHARACTERS.values(), ids=BAD_NAME_CHARACTERS.keys())
def test_a_workspace_name_with_a_separator_control_or_format_character_is_refused(
    platform_admin: Api, char: str
) -> None:
    name = f"ws-{uuid.uuid4().hex}"

    names_refused(platform_admin.post("/api/v1/workspaces", {"name": f"bad{char}{name}"}), "name")

    listed = platform_admin.get("/api/v1/workspaces?limit=100").body["items"]
    assert not any(name in workspace["name"] for workspace in listed)


@pytest.mark.parametrize("char", BAD_NAME_CHARACTERS.values(), ids=BAD_NAME_CHARACTERS.keys())
def test_an_environment_name_with_a_separator_control_or_format_character_is_refused(tenant: Tenant, char: str) -> None:
    environments = f"{tenant.workspace_path}/environments"

    names_refused(tenant.api.post(environments, {"name": f"stag{char}ing"}), "name")

    assert [item["name"] for item in tenant.api.get(environments).body["items"]] == ["development"]


@pytest.mark.parametrize("char", BAD_NAME_CHARACTERS.values(), ids=BAD_NAME_CHARACTERS.keys())
def test_an_api_key_name_with_a_separator_control_or_format_character_is_refused(tenant: Tenant, char: str) -> None:
    keys = f"{tenant.workspace_path}/api-keys"
    before = tenant.api.get(keys).body["items"]

    names_refused(tenant.api.post(keys, {"name": f"ci{char}key", "role": "viewer"}), "name")

    assert tenant.api.get(keys).body["items"] == before


@pytest.mark.parametrize("char", BAD_NAME_CHARACTERS.values(), ids=BAD_NAME_CHARACTERS.keys())
def test_a_connection_name_with_a_separator_control_or_format_character_is_refused_at_create_and_update(
    tenant: Tenant, char: str
) -> None:
    refused = tenant.api.post(
        tenant.connections_path, {"name": f"prod{char}", "provider": "openai", "config": {"apiKey": "sk-1"}}
    )
    created = create(tenant, "openai", {"apiKey": "sk-1"}).body
    path = f"{tenant.connections_path}/{created['connectionId']}"
    patched = tenant.api.patch(path, {"name": f"pr{char}od"})

    names_refused(refused, "name")
    names_refused(patched, "name")
    assert [item["name"] for item in tenant.api.get(tenant.connections_path).body["items"]] == ["prod"]
    assert tenant.api.get(path).body["version"] == created["version"]


@pytest.mark.parametrize("char", BAD_DESCRIPTION_CHARACTERS.values(), ids=BAD_DESCRIPTION_CHARACTERS.keys())
def test_a_description_with_a_separator_control_or_bidi_override_is_refused_everywhere(
    tenant: Tenant, platform_admin: Api, char: str
) -> None:
    description = f"reads one way{char} shows another"
    environments = f"{tenant.workspace_path}/environments"
    created = create(tenant, "openai", {"apiKey": "sk-1"}).body
    path = f"{tenant.connections_path}/{created['connectionId']}"

    names_refused(
        platform_admin.post("/api/v1/workspaces", {"name": "docs", "description": description}), "description"
    )
    names_refused(tenant.api.post(environments, {"name": "docs", "description": description}), "description")
    names_refused(
        tenant.api.post(
            tenant.connections_path,
            {"name": "docs", "provider": "openai", "config": {"apiKey": "sk-1"}, "description": description},
        ),
        "description",
    )
    names_refused(tenant.api.patch(path, {"description": description}), "description")

    assert [item["name"] for item in tenant.api.get(environments).body["items"]] == ["development"]
    assert [item["name"] for item in tenant.api.get(tenant.connections_path).body["items"]] == ["prod"]
    assert tenant.api.get(path).body["description"] is None


def test_names_and_descriptions_of_ordinary_text_in_any_script_are_accepted(tenant: Tenant) -> None:
    environments = f"{tenant.workspace_path}/environments"

    environment = tenant.api.post(
        environments, {"name": "Produção 生产 🚀", "description": "live traffic\n\tsee the runbook; \u200fعربي"}
    )
    connection = create(tenant, "openai", {"apiKey": "sk-1"}).body
    renamed = tenant.api.patch(
        f"{tenant.connections_path}/{connection['connectionId']}", {"name": "Ünïcode — ok", "description": "a\nb"}
    )

    assert environment.status == 201, environment.text
    assert renamed.status == 200, renamed.text
    assert renamed.body["name"] == "Ünïcode — ok"


@pytest.mark.parametrize("shape", ["{}\n", "{}\r\nX-Injected: 1", "{}\x00", "{}é"], ids=["LF", "CRLF", "NUL", "é"])
def test_a_key_stored_before_these_checks_fails_a_completion_without_its_text_in_the_answer_or_the_logs(
    tenant: Tenant, shape: str, logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a connection stored, as the API once allowed, with a key a header cannot carry
    settings = ConnectionsSettings.from_environ(os.environ)
    repository = DynamoConnectionRepository(
        settings.connections_table_name, settings.aws_region, tenancy_table_name=settings.tenancy_table_name
    )
    secret = canary()
    with loopback_provider("openai") as provider:
        connection = connection_record(
            workspace_id=tenant.workspace_id,
            environment_id=tenant.environment_id,
            name="legacy",
            settings={"baseUrl": provider.base_url},
        )
        sealed = wiring.credential_cipher(settings, settings.aws_region).seal(
            {"apiKey": SecretStr(shape.format(secret))}, connection.encryption_context
        )
        repository.add(connection.model_copy(update={"secrets": sealed}))
        path = f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"

        # When a completion goes through it
        response = tenant.api.post(
            path, {"model": "legacy/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        )

    # Then it is refused before the provider is called (the stored config is validated again when opened),
    # and neither the answer nor any log line holds the key
    assert (response.status, response.error["code"]) == (502, "connection_misconfigured"), response.text
    assert provider.requests == []
    assert secret not in response.text
    assert secret not in logged(logs, capfd)
