"""The resolver every test uses in the machine's place: names resolve without a packet leaving the machine."""

import socket
from collections.abc import Mapping

# A globally routable address (example.com's) for the names tests use as public hosts.
PUBLIC_ADDRESS = "93.184.215.14"
_PUBLIC_SUFFIXES = (".example.com", ".example.org", ".example.net")


class FakeResolver:
    """Resolves public test names to PUBLIC_ADDRESS, `localhost` to loopback, and `names` as told."""

    def __init__(self, names: Mapping[str, list[str]] | None = None) -> None:
        self.names = dict(names or {})
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host in self.names:
            return self.names[host]
        if host == "localhost":
            return ["127.0.0.1", "::1"]
        if host in {"example.com", "example.org", "example.net"} or host.endswith(_PUBLIC_SUFFIXES):
            return [PUBLIC_ADDRESS]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
