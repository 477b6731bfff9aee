"""Where a baseUrl may point: every spelling of an inside address is refused, names are judged by what they
resolve to (a fake resolver: no query leaves the machine), and the connecting pool holds to the same policy
before any socket is opened, whatever the name resolves to by then."""

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from tests.fake_resolver import PUBLIC_ADDRESS, FakeResolver
from vmx.providers import addresses
from vmx.providers.addresses import AddressPolicy, AddressRefused, ForbiddenAddress, guarded_pool_manager

INSIDE = [
    # the metadata service, in every spelling a resolver reads
    "http://169.254.169.254/latest",
    "https://169.254.169.254.",
    "https://2852039166/",
    "https://0xA9FEA9FE/",
    "https://0xa9.0xfe.0xa9.0xfe/",
    "https://0251.0376.0251.0376/",
    "https://169.254.43518/",
    "https://0xA9FEA9FE./",
    "https://0251.254.43518/",
    "https://[::ffff:169.254.169.254]/",
    "https://[fd00:ec2::254]/",
    # private, shared, unspecified, broadcast, multicast, reserved, documentation
    "https://10.0.0.1/",
    "https://10.1/",
    "https://10.0.0.1./",
    "https://167772161/",
    "https://012.0.0.1/",
    "https://172.16.0.1/",
    "https://172.31.255.255/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://0.0.0.0/",
    "https://0/",
    "https://255.255.255.255/",
    "https://224.0.0.1/",
    "https://240.0.0.1/",
    "https://192.0.2.10/",
    "https://192.0.0.9/",
    "https://192.88.99.1/",
    "https://198.18.0.1/",
    # a number no resolver reads as an address, and that is no name either
    "https://256.1.1.1/",
    "https://4294967296/",
    # IPv6: unique local, link-local, IPv4 inside IPv6 (mapped, NAT64, 6to4)
    "https://[fc00::1]/",
    "https://[fe80::1%25eth0]/",
    "https://[::ffff:10.0.0.1]/",
    "https://[64:ff9b::a00:1]/",
    "https://[2002:a00:1::]/",
    # IPv6 the gateway has no business with: IPv4-compatible and -translated, local-use NAT64, site-local,
    # Teredo, multicast, documentation, unspecified (Python 3.11's ipaddress calls several of these global)
    "https://[::10.0.0.1]/",
    "https://[::169.254.169.254]/",
    "https://[::8.8.8.8]/",
    "https://[::ffff:0:10.0.0.1]/",
    "https://[64:ff9b:1::a00:1]/",
    "https://[fec0::1]/",
    "https://[2001::1]/",
    "https://[ff02::1]/",
    "https://[3fff::1]/",
    "https://[::]/",
    # loopback, where it is not allowed
    "http://127.0.0.1:8080/v1",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::1]:8080/",
    "http://localhost:8080/",
]
PUBLIC = [
    "https://api.openai.com.example.com/v1",
    "https://proxy.example.com",
    "https://93.184.215.14/",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/",
    "https://[64:ff9b::5db8:d70e]/",
]


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver(
        {
            "internal.example.com": ["10.0.0.7"],
            "metadata.example.com": ["169.254.169.254"],
            "mixed.example.com": [PUBLIC_ADDRESS, "192.168.0.2"],
            "v6-local.example.com": ["fd12::1"],
        }
    )


@pytest.mark.parametrize("url", INSIDE)
def test_an_inside_address_is_refused_in_every_spelling(url: str, resolver: FakeResolver) -> None:
    with pytest.raises(AddressRefused):
        AddressPolicy(allow_loopback=False, resolve=resolver).check_url(url)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_and_names_that_resolve_to_them_are_allowed(url: str, resolver: FakeResolver) -> None:
    AddressPolicy(allow_loopback=False, resolve=resolver).check_url(url)


@pytest.mark.parametrize(
    "host", ["internal.example.com", "metadata.example.com", "mixed.example.com", "v6-local.example.com"]
)
def test_a_name_is_refused_when_any_address_it_resolves_to_is_inside(host: str, resolver: FakeResolver) -> None:
    with pytest.raises(AddressRefused, match=host):
        AddressPolicy(allow_loopback=False, resolve=resolver).check_url(f"https://{host}/v1")

    assert resolver.asked == [host]


def test_a_name_that_does_not_resolve_is_refused(resolver: FakeResolver) -> None:
    with pytest.raises(AddressRefused, match="does not resolve"):
        AddressPolicy(allow_loopback=False, resolve=resolver).check_url("https://nowhere.invalid/v1")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://[::1]:8080/",
        "http://localhost:9/",
        "http://127.1:9/",
        "http://[::ffff:127.0.0.1]:9/",
    ],
)
def test_loopback_is_allowed_where_the_setting_allows_it(url: str, resolver: FakeResolver) -> None:
    AddressPolicy(allow_loopback=True, resolve=resolver).check_url(url)


@pytest.mark.parametrize("url", ["https://[64:ff9b::7f00:1]/", "https://[2002:7f00:1::]/", "https://[::127.0.0.1]/"])
def test_loopback_carried_out_of_the_machine_is_no_loopback(url: str, resolver: FakeResolver) -> None:
    # NAT64, 6to4 and IPv4-compatible addresses leave the machine: they never reach its own loopback
    with pytest.raises(AddressRefused, match="not a public address"):
        AddressPolicy(allow_loopback=True, resolve=resolver).check_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:4010/v1", "http://localhost:4010", "https://api.gw.example.com"])
def test_the_gateways_own_api_is_refused_even_where_loopback_is_allowed(url: str, resolver: FakeResolver) -> None:
    policy = AddressPolicy(
        allow_loopback=True,
        own_hosts=frozenset({"127.0.0.1:4010", "localhost:4010", "api.gw.example.com"}),
        resolve=resolver,
    )

    with pytest.raises(AddressRefused, match="own API"):
        policy.check_url(url)
    # another port on the same machine is another server
    policy.check_url("http://127.0.0.1:4011/v1")


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433:4010/v1",
        "http://127.1:4010/",
        "http://0x7f000001:4010/",
        "http://127.0.0.2:4010/",
        "http://[::1]:4010/",
        "http://[::ffff:127.0.0.1]:4010/",
        "http://me.example.com:4010/",
    ],
)
def test_the_local_stacks_own_port_is_refused_on_every_loopback_address(url: str) -> None:
    policy = AddressPolicy(
        allow_loopback=True,
        own_hosts=frozenset({"127.0.0.1:4010", "localhost:4010", "::1:4010"}),
        resolve=FakeResolver({"me.example.com": ["127.0.0.1"]}),
    )

    with pytest.raises(AddressRefused, match="own API"):
        policy.check_url(url)


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class CountingConnect:
    """Stands in for the socket connect: proves whether one was attempted."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        self.calls.append(address)
        raise AssertionError("no connection may be opened")


def test_a_name_whose_dns_changed_to_an_inside_address_is_refused_before_any_socket_opens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # stored when it resolved to a public address; rebound to a private one since
    resolver = FakeResolver({"rebound.example.com": [PUBLIC_ADDRESS]})
    policy = AddressPolicy(allow_loopback=False, resolve=resolver)
    policy.check_url("https://rebound.example.com/v1")
    resolver.names["rebound.example.com"] = ["10.0.0.1"]
    connect = CountingConnect()
    monkeypatch.setattr(addresses, "create_connection", connect)

    with pytest.raises(ForbiddenAddress) as refused:
        guarded_pool_manager(policy).request("GET", "https://rebound.example.com/v1", retries=False)

    assert connect.calls == []
    assert "not a public address" in refused.value.reason


def test_a_name_that_stopped_resolving_is_a_failed_connection_not_a_refused_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect = CountingConnect()
    monkeypatch.setattr(addresses, "create_connection", connect)
    pool = guarded_pool_manager(AddressPolicy(allow_loopback=False, resolve=FakeResolver()))

    with pytest.raises(urllib3.exceptions.NameResolutionError) as failed:
        pool.request("GET", "https://gone.example.net.invalid/v1", retries=False)

    assert not isinstance(failed.value, ForbiddenAddress)
    assert connect.calls == []


def test_the_pool_refuses_the_gateways_own_api(monkeypatch: pytest.MonkeyPatch) -> None:
    connect = CountingConnect()
    monkeypatch.setattr(addresses, "create_connection", connect)
    policy = AddressPolicy(
        allow_loopback=True, own_hosts=frozenset({"127.0.0.1:4010", "api.gw.example.com"}), resolve=FakeResolver()
    )
    pool = guarded_pool_manager(policy)

    for url in ("https://api.gw.example.com/v1", "http://2130706433:4010/v1"):
        with pytest.raises(ForbiddenAddress, match="own API"):
            pool.request("GET", url, retries=False)
    assert connect.calls == []


def test_the_pool_connects_to_the_address_it_checked(loopback_server: int) -> None:
    resolver = FakeResolver({"provider.example.com": ["127.0.0.1"]})
    pool = guarded_pool_manager(AddressPolicy(allow_loopback=True, resolve=resolver))

    response = pool.request("GET", f"http://provider.example.com:{loopback_server}/", retries=False)

    assert (response.status, response.data) == (200, b"hello")
    assert resolver.asked == ["provider.example.com"]


def test_the_pool_refuses_loopback_where_it_is_not_allowed(loopback_server: int) -> None:
    pool = guarded_pool_manager(AddressPolicy(allow_loopback=False, resolve=FakeResolver()))

    with pytest.raises(ForbiddenAddress, match="loopback"):
        pool.request("GET", f"http://127.0.0.1:{loopback_server}/", retries=False)
    with pytest.raises(urllib3.exceptions.HTTPError):
        pool.request("GET", f"http://localhost:{loopback_server}/", retries=False)
