"""Where the gateway may send a connection's credentials: the address policy for `baseUrl`, applied when a URL
is stored and again when connecting.

A baseUrl is the one address a user chooses, and the gateway sends the stored key there: pointed inside
(a metadata service, a private network, the gateway itself) it would make the gateway a proxy into places its
users cannot reach. Only globally routable addresses are allowed: private, shared (100.64/10), link-local
(169.254/16, the metadata service), loopback, unspecified, reserved, documentation, benchmarking, multicast
and broadcast ones are refused, in IPv4 and IPv6 (unique and site local, IPv4-compatible, local-use NAT64),
with IPv4 carried inside IPv6 (mapped, NAT64, 6to4) judged as the IPv4 it carries. The ranges are listed
here rather than left to `ipaddress.is_global`, whose answers differ between Python versions. Hosts are read
as a resolver would read them: `2852039166`, `0xA9FEA9FE`, `0251.0376.0251.0376` and `169.254.43518` are all
169.254.169.254. Loopback is allowed where the setting says so (the local stack and tests), and never the
gateway's own API: by its host name, and locally by its port on any loopback address, however spelled.

A name is resolved when the URL is stored (its owner hears at once) and again at every new connection, which
goes to the address just checked (`guarded_pool_manager`), so a name whose DNS changes later still cannot reach
inside.
"""

import ipaddress
import re
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

# host, port -> the addresses it resolves to, as text
Resolver = Callable[[str, int], Sequence[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOOPBACK_NAMES = frozenset({"localhost"})

# Not a public address, whatever this Python's ipaddress says (is_global is checked as well).
_REFUSED = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # this network
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local: the metadata service
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relays (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast included
        "::/8",  # unspecified, loopback, IPv4-compatible and -translated, local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo included
        "2001:db8::/32",
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)


def system_resolver(host: str, port: int) -> list[str]:
    """The machine's resolver (DNS, /etc/hosts): what a connection to `host` would use."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class AddressRefused(ValueError):
    """Why a URL may not be connected to; its text names the host, never anything secret."""


class NameNotResolved(AddressRefused):
    """The host resolves to nothing (now): refused when stored, a connection failure when connecting."""


@dataclass(frozen=True)
class AddressPolicy:
    allow_loopback: bool
    # the gateway's own API, as `host` or `host:port`: a connection pointing there would call itself
    own_hosts: frozenset[str] = frozenset()
    # looked up when called when not given, so that tests can put a fake resolver in the machine's place
    resolve: Resolver | None = None

    def check_url(self, url: str) -> None:
        """Raises AddressRefused unless every address `url`'s host stands for may be connected to."""
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.check_host(host, port)
        literal = literal_address(host)
        for address in [literal] if literal is not None else self.addresses(host, port):
            self.check_address(address, host, port)

    def check_host(self, host: str, port: int) -> None:
        """Refuses the gateway's own API by name."""
        if host in self.own_hosts or f"{host}:{port}" in self.own_hosts:
            raise AddressRefused(f"'{host}' is this gateway's own API")

    def addresses(self, host: str, port: int) -> list[IpAddress]:
        """What `host` resolves to now; raises NameNotResolved when it resolves to nothing."""
        try:
            found = (self.resolve or system_resolver)(host, port)
            resolved = [ipaddress.ip_address(address.split("%", 1)[0]) for address in found]
        except (OSError, UnicodeError, ValueError):
            raise NameNotResolved(f"host '{host}' does not resolve") from None
        if not resolved:
            raise NameNotResolved(f"host '{host}' does not resolve")
        return resolved

    def check_address(self, address: IpAddress, host: str, port: int) -> None:
        """Refuses `address` (one that `host` stands for) unless it may be connected to on `port`."""
        # IPv4 inside IPv6 is judged as the IPv4 it reaches; any other IPv6 by itself
        judged = _embedded_ipv4(address) or address
        # only ::1 and mapped addresses reach this machine's loopback (NAT64 and 6to4 ones go out)
        local = (address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else address
        if local.is_loopback:
            if not self.allow_loopback:
                raise AddressRefused(f"'{host}' is a loopback address")
            if port in self._own_loopback_ports:
                raise AddressRefused(f"'{host}' is this gateway's own API")
            return
        if judged.is_link_local:
            raise AddressRefused(f"'{host}' is a link-local address (such as a cloud metadata service)")
        if not _public(judged):
            raise AddressRefused(f"'{host}' is not a public address (private, shared, reserved or multicast)")

    @property
    def _own_loopback_ports(self) -> frozenset[int]:
        """The ports of own hosts on this machine (the local stack): any loopback address reaches them there."""
        ports: set[int] = set()
        for own in self.own_hosts:
            host, _, port = own.rpartition(":")
            host = host.strip("[]")
            if port.isdigit() and (host in _LOOPBACK_NAMES or _is_loopback_literal(host)):
                ports.add(int(port))
        return frozenset(ports)


def literal_address(host: str) -> IpAddress | None:
    """The address a host spells literally, in any form a resolver accepts (dotted, decimal, hex, octal,
    shortened IPv4; IPv6 with or without a zone); None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        # inet_aton reads every IPv4 spelling that libc's resolver does, without resolving anything
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise AddressRefused(f"'{host}' is neither a host name nor an address") from None


def _public(address: IpAddress) -> bool:
    return address.is_global and not address.is_multicast and not any(address in network for network in _REFUSED)


def _is_loopback_literal(host: str) -> bool:
    try:
        address = literal_address(host)
    except AddressRefused:
        return False
    return address is not None and address.is_loopback


def _embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class ForbiddenAddress(NewConnectionError):
    """A connection refused by the policy before any socket was opened."""

    def __init__(self, connection: HTTPConnection, reason: str):
        super().__init__(connection, reason)
        self.reason = reason


def _connect_checked(connection: HTTPConnection, policy: AddressPolicy) -> socket.socket:
    """Opens the connection's socket to its host's addresses, once the policy has allowed every one of them;
    TLS still verifies the host name (SNI and the certificate use `connection.host`)."""
    host = connection.host.rstrip(".").lower()
    port = connection.port
    try:
        policy.check_host(host, port)
        literal = literal_address(host)
        addresses = [literal] if literal is not None else policy.addresses(host, port)
        for address in addresses:
            policy.check_address(address, host, port)
    except NameNotResolved as unresolved:
        # as urllib3 says it (a connection that failed, not a refused address)
        raise NameResolutionError(host, connection, socket.gaierror(str(unresolved))) from None
    except AddressRefused as refused:
        raise ForbiddenAddress(connection, str(refused)) from None
    failure: OSError | None = None
    for address in addresses:
        try:
            sock = create_connection(
                (str(address), port),
                connection.timeout,
                source_address=connection.source_address,
                socket_options=connection.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(connection, f"connection to {host} timed out") from exc
        except OSError as exc:
            failure = exc
            continue
        sys.audit("http.client.connect", connection, connection.host, port)
        return sock
    raise NewConnectionError(connection, f"failed to establish a new connection: {failure}")


def guarded_pool_manager(policy: AddressPolicy, **pool_kw: Any) -> urllib3.PoolManager:
    """A PoolManager whose every new connection holds to `policy`."""

    class CheckedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect_checked(self, policy)

    class CheckedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect_checked(self, policy)

    class CheckedHTTPPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTPConnection

    class CheckedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPSConnection

    manager = urllib3.PoolManager(**pool_kw)
    manager.pool_classes_by_scheme = {"http": CheckedHTTPPool, "https": CheckedHTTPSPool}
    return manager
