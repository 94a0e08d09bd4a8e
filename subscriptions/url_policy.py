"""SSRF rules for endpoint URLs: http(s), a host whose every address is public or explicitly allowed.

Used when an endpoint is saved and again, by ``deliveries.http``, right before each send.
"""

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ground.conf import setting

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeUrl(ValueError):
    """The URL may not be used as a webhook endpoint; the message says why."""


class UnresolvableHost(UnsafeUrl):
    """The URL's host name has no address in DNS (now): a lookup failure, not a policy refusal."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (for Host, SNI and certificate checks)
    port: int
    path: str  # path and query, at least "/"


def parse_target(url: str) -> Target:
    if not isinstance(url, str) or not url.strip():
        raise UnsafeUrl("Enter a URL.")
    if any(ch in url for ch in "\r\n\t ") or any(ord(ch) < 32 for ch in url):
        raise UnsafeUrl("The URL must not contain whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"The URL is malformed: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("The URL must start with http:// or https://.")
    if setting("REQUIRE_HTTPS") and scheme != "https":
        raise UnsafeUrl("This deployment only delivers to https:// URLs.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("Put credentials in the endpoint's auth settings, not in the URL.")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("The URL has no host.")
    try:
        host = host.encode("idna").decode("ascii")  # internationalised names travel as punycode
    except UnicodeError as exc:
        raise UnsafeUrl(f"The host {host!r} is not a valid domain name.") from exc
    if port == 0:
        raise UnsafeUrl("The URL's port must be between 1 and 65535.")
    port = port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, path=path)


def _allowed_networks() -> list[IPNetwork]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in setting("ALLOW_PRIVATE_NETWORKS")]


def is_address_allowed(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> bool:
    """True for globally routable unicast addresses and for those inside an allowed network."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo) is judged by the IPv4 address.
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        inner = [ip for ip in embedded if ip is not None]
        if inner:
            return all(is_address_allowed(ip, allowed) for ip in inner)
    if any(address in network for network in allowed):
        return True
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


def resolve_allowed_addresses(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, or UnsafeUrl if one of them is not allowed."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        addresses = [literal]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnresolvableHost(f"The host {host!r} cannot be resolved.") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if not addresses:
        raise UnresolvableHost(f"The host {host!r} has no addresses.")
    allowed = _allowed_networks()
    for address in addresses:
        if not is_address_allowed(address, allowed):
            raise UnsafeUrl(f"The host {host!r} resolves to {address}, which is not a public address.")
    return addresses


def validate_endpoint_url(url: str) -> Target:
    target = parse_target(url)
    resolve_allowed_addresses(target.host, target.port)
    return target
