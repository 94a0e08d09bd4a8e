import ipaddress

import pytest

from deliveries import http
from subscriptions.url_policy import (
    Target,
    UnsafeUrl,
    is_address_allowed,
    parse_target,
    resolve_allowed_addresses,
    validate_endpoint_url,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:4700::1111"

NON_PUBLIC_URLS = [
    "http://127.0.0.1/hook",
    "http://localhost/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[fc00::1]/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://100.64.0.1/hook",
    "http://2130706433/hook",  # 127.0.0.1 as a number
    "http://0x7f000001/hook",  # and in hex
]


def _with(settings, **overrides):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, **overrides}


@pytest.fixture
def no_private_networks(settings):
    _with(settings, ALLOW_PRIVATE_NETWORKS=[], REQUIRE_HTTPS=False)


@pytest.mark.parametrize("url", NON_PUBLIC_URLS)
def test_non_public_destination_is_refused(no_private_networks, url):
    with pytest.raises(UnsafeUrl, match="not a public address"):
        validate_endpoint_url(url)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fc00::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "0.0.0.0",  # noqa: S104 (an address under test, not a bind)
        "::",
        "224.0.0.1",
        "ff02::1",
        "100.64.0.1",
        "fe80::1",
        "240.0.0.1",
    ],
)
def test_non_public_address_is_not_allowed(address):
    assert is_address_allowed(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", [PUBLIC_V4, PUBLIC_V6, "1.1.1.1", "::ffff:93.184.216.34"])
def test_public_address_is_allowed(address):
    assert is_address_allowed(ipaddress.ip_address(address)) is True


def test_hostname_resolving_to_loopback_is_refused(no_private_networks):
    with pytest.raises(UnsafeUrl, match="'localhost' resolves to"):
        resolve_allowed_addresses("localhost", 80)


def test_unresolvable_hostname_is_refused(no_private_networks):
    with pytest.raises(UnsafeUrl, match="cannot be resolved"):
        validate_endpoint_url("http://no-such-host.invalid/hook")


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://{PUBLIC_V4}/hook",
        "file:///etc/passwd",
        f"gopher://{PUBLIC_V4}:70/_hook",
        "javascript:alert(1)",
        f"//{PUBLIC_V4}/hook",
    ],
)
def test_non_http_scheme_is_refused(no_private_networks, url):
    with pytest.raises(UnsafeUrl, match="http:// or https://"):
        validate_endpoint_url(url)


@pytest.mark.parametrize(
    "url", [f"http://user:secret@{PUBLIC_V4}/hook", f"http://user@{PUBLIC_V4}/hook", f"http://:pw@{PUBLIC_V4}/"]
)
def test_credentials_in_url_are_refused(no_private_networks, url):
    with pytest.raises(UnsafeUrl, match="credentials"):
        validate_endpoint_url(url)


@pytest.mark.parametrize("url", ["http:///hook", "http://:80/hook", "https://"])
def test_url_without_host_is_refused(no_private_networks, url):
    with pytest.raises(UnsafeUrl, match="no host"):
        validate_endpoint_url(url)


@pytest.mark.parametrize("url", [f"http://{PUBLIC_V4}:99999/hook", f"http://{PUBLIC_V4}:abc/hook"])
def test_bad_port_is_refused(no_private_networks, url):
    with pytest.raises(UnsafeUrl, match="(?i)port"):
        validate_endpoint_url(url)


@pytest.mark.parametrize(
    "url",
    [
        f"http://{PUBLIC_V4}/a b",
        f"http://{PUBLIC_V4}/hook\r\nX-Injected: 1",
        f"http://{PUBLIC_V4}/hook\n",
        f"\thttp://{PUBLIC_V4}/hook",
        f"http://{PUBLIC_V4}/ho\x00ok",
        f"http://{PUBLIC_V4}/ho\x1bok",
    ],
)
def test_whitespace_or_control_characters_are_refused(no_private_networks, url):
    with pytest.raises(UnsafeUrl, match="whitespace or control"):
        validate_endpoint_url(url)


@pytest.mark.parametrize("url", ["", "   "])
def test_empty_url_is_refused(no_private_networks, url):
    with pytest.raises(UnsafeUrl):
        validate_endpoint_url(url)


@pytest.mark.parametrize("url", ["http://[::1/hook", "http://[not-an-ip]/hook"])
def test_malformed_bracketed_host_is_refused_as_unsafe(no_private_networks, url):
    with pytest.raises(UnsafeUrl):
        validate_endpoint_url(url)


def test_require_https_refuses_http(settings):
    _with(settings, ALLOW_PRIVATE_NETWORKS=[], REQUIRE_HTTPS=True)

    with pytest.raises(UnsafeUrl, match="https://"):
        validate_endpoint_url(f"http://{PUBLIC_V4}/hook")
    assert validate_endpoint_url(f"https://{PUBLIC_V4}/hook").scheme == "https"


def test_public_ipv4_literal_is_allowed(no_private_networks):
    target = validate_endpoint_url(f"https://{PUBLIC_V4}/hook?tenant=1")

    assert target == Target(scheme="https", host=PUBLIC_V4, port=443, path="/hook?tenant=1")


def test_public_ipv6_literal_is_allowed(no_private_networks):
    target = validate_endpoint_url(f"http://[{PUBLIC_V6}]:8080")

    assert target == Target(scheme="http", host=PUBLIC_V6, port=8080, path="/")
    assert resolve_allowed_addresses(target.host, target.port) == [ipaddress.ip_address(PUBLIC_V6)]


def test_allow_list_admits_its_network_only(settings):
    _with(settings, ALLOW_PRIVATE_NETWORKS=["127.0.0.0/8"], REQUIRE_HTTPS=False)

    assert validate_endpoint_url("http://127.0.0.1:8000/hook").port == 8000
    with pytest.raises(UnsafeUrl, match="10.0.0.1"):
        validate_endpoint_url("http://10.0.0.1/hook")


def _post(url: str) -> http.HttpResult:
    return http.post(
        url,
        headers={"content-type": "application/json"},
        body=b"{}",
        connect_timeout=2,
        total_timeout=5,
        max_response_bytes=1024,
    )


def test_http_post_to_a_refused_address_sends_nothing(no_private_networks, receiver):
    result = _post(receiver.url())

    assert result.status_code is None
    assert result.error.startswith("Refused")
    assert receiver.requests == []


def test_http_post_to_an_allowed_address_reaches_the_receiver(settings, receiver):
    _with(settings, ALLOW_PRIVATE_NETWORKS=["127.0.0.0/8"], REQUIRE_HTTPS=False)

    result = _post(receiver.url())

    assert result.status_code == 200
    assert [request.body for request in receiver.requests] == [b"{}"]


def test_site_local_ipv6_is_refused(no_private_networks):
    with pytest.raises(UnsafeUrl, match="not a public address"):
        validate_endpoint_url("http://[fec0::1]/hook")


def test_an_internationalised_host_is_resolved_as_punycode():
    assert parse_target("https://xn--mnchen-3ya.de/a").host == parse_target("https://münchen.de/a").host
