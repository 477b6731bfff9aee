"""A stream read to its end gives its provider connection back to the pool, so the next stream (and its TLS
handshake, against a real provider) reuses it; one stopped mid-answer never goes back."""

import pytest
import urllib3
from pydantic import SecretStr

from tests.functional.providers.conftest import HTTP_PROVIDERS, NOW, no_bedrock
from tests.loopback_providers import LOOPBACK_PIECES, Kind, loopback_provider
from tests.unit.completions.samples import chat_request
from vmx.completions.providers import ProviderCall, Transports, open_stream
from vmx.providers.catalog import ProviderId


@pytest.mark.parametrize(("kind", "provider", "model"), HTTP_PROVIDERS, ids=[kind for kind, _, _ in HTTP_PROVIDERS])
def test_streams_read_to_their_end_share_one_connection(kind: Kind, provider: ProviderId, model: str) -> None:
    http = urllib3.PoolManager()
    transports = Transports(http=http, bedrock_client=no_bedrock, clock=lambda: NOW)
    with loopback_provider(kind) as server:
        call = ProviderCall(
            provider,
            model,
            {"baseUrl": server.base_url},
            {"apiKey": SecretStr(server.api_key or "")},
            chat_request(stream=True),
            5.0,
        )
        for _ in range(3):
            stream = open_stream(call, transports)
            list(stream)
            stream.close()

        pool = http.connection_from_url(server.base_url)

    assert pool.num_connections == 1


def test_a_stream_stopped_mid_answer_lets_its_connection_go() -> None:
    http = urllib3.PoolManager()
    transports = Transports(http=http, bedrock_client=no_bedrock, clock=lambda: NOW)
    with loopback_provider("openai") as server:
        server.stream_with(list(LOOPBACK_PIECES))
        call = ProviderCall(
            ProviderId.OPENAI,
            "gpt-4o-mini",
            {"baseUrl": server.base_url},
            {"apiKey": SecretStr(server.api_key or "")},
            chat_request(stream=True),
            5.0,
        )
        stream = open_stream(call, transports)
        next(iter(stream))
        stream.close()
        list(open_stream(call, transports))

        pool = http.connection_from_url(server.base_url)

    assert pool.num_connections == 2
