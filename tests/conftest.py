"""Set before any project import: every AWS client in the test process points at nothing real."""

import base64
import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "vmx-ai-connections",
        "POWERTOOLS_METRICS_NAMESPACE": "VmxAiConnections",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "CREDENTIALS_CIPHER": "sodium",
        "CREDENTIALS_SODIUM_KEY": base64.b64encode(os.urandom(32)).decode(),
        # the loopback providers the tests run
        "ALLOW_LOOPBACK_BASE_URLS": "true",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
    }
)
for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(name, None)


def pytest_configure() -> None:
    # Every tier runs on the moto the local stack runs (its costs that grow with the data removed, the same
    # answers), whichever test of a worker happens to start the local stack's server first.
    from local_stack.moto_server import install_cheaper_moto

    install_cheaper_moto()
    # No name a test stores as a baseUrl is looked up on the machine's resolver (a DNS query is traffic).
    from tests.fake_resolver import FakeResolver
    from vmx.providers import addresses

    addresses.system_resolver = FakeResolver()
    # and a public name the fake resolves is never connected to: a connection beyond loopback is refused
    addresses.create_connection = _loopback_only(addresses.create_connection)  # type: ignore[attr-defined]


def _loopback_only(connect: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
    def connect_on_loopback(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise ConnectionRefusedError(f"tests connect only on loopback, not to {address[0]}")
        return connect(address, *args, **kwargs)

    return connect_on_loopback
