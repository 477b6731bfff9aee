"""A secret stored before such secrets were refused, holding a line break: a completion through it fails (the
configuration is validated again before the call) without reaching the provider, gives its capacity back, and
neither the answer nor any log line quotes it; and if such a secret ever reached a request, the request is
refused without quoting it either."""

import os

import pytest
import urllib3
from pydantic import SecretStr

from tests.functional.conftest import Tenant
from tests.loopback_providers import loopback_provider
from vmx import wiring
from vmx.completions.calls import ProviderError
from vmx.completions.http_json import post_json
from vmx.settings import ConnectionsSettings
from vmx.storage.connection_store import DynamoConnectionRepository

BROKEN_KEY = "sk-pasted-with-its-newline\r\nX-Injected: yes"


def store_secret_as_is(tenant: Tenant, connection_id: str, key: str) -> None:
    """Seals and stores `key` directly, as an older version of the service would have let it be stored."""
    settings = ConnectionsSettings.from_environ(os.environ)
    repository = DynamoConnectionRepository(
        settings.connections_table_name, settings.aws_region, tenancy_table_name=settings.tenancy_table_name
    )
    current = repository.get(tenant.workspace_id, tenant.environment_id, connection_id)
    assert current is not None
    updated = current.model_copy(deep=True)
    cipher = wiring.credential_cipher(settings, settings.aws_region)
    updated.secrets = cipher.seal({"apiKey": SecretStr(key)}, current.encryption_context)
    updated.version = current.version + 1
    repository.replace(current, updated)


def test_a_stored_secret_no_header_can_carry_fails_without_quoting_it(
    tenant: Tenant, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with loopback_provider("openai") as provider:
        config = {"apiKey": "sk-valid", "baseUrl": provider.base_url}
        created = tenant.api.post(
            tenant.connections_path,
            {"name": "prod", "provider": "openai", "config": config, "capacity": [{"period": "day", "requests": 1}]},
        ).body
        store_secret_as_is(tenant, created["connectionId"], BROKEN_KEY)
        path = f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"
        body = {"model": "prod/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

        answers = [tenant.api.post(path, body) for _ in range(2)]

        assert [answer.status for answer in answers] == [502, 502]
        assert answers[0].error["code"] == "connection_misconfigured"
        assert provider.requests == []
    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    for text in (answers[0].text, logged):
        assert "sk-pasted-with-its-newline" not in text
        assert "X-Injected" not in text
    # neither failure spent the day's one request
    usage = tenant.api.get(f"{tenant.connections_path}/{created['connectionId']}/capacity").body
    assert usage["windows"][0]["requestsUsed"] == 0, usage


def test_a_header_no_request_can_carry_is_refused_without_quoting_it() -> None:
    with loopback_provider("openai") as provider:
        with pytest.raises(ProviderError) as refused:
            post_json(
                urllib3.PoolManager(),
                "OpenAI",
                provider.base_url + "/chat/completions",
                {"model": "gpt-4o-mini"},
                {"authorization": f"Bearer {BROKEN_KEY}"},
                timeout_seconds=5,
            )

        assert provider.requests == []
    assert (refused.value.code, refused.value.reached) == ("credentials_unusable", False)
    assert "sk-pasted" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
