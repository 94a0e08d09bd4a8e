"""The only module that talks to the network: a hardened POST for webhook deliveries.

Every request: the URL's host is resolved once and every address vetted
(``subscriptions.url_policy``); the connection goes to that vetted address (no
second lookup) while Host, SNI and the certificate check use the URL's host; no
redirects are followed; TLS is verified (against the endpoint's own CA when it has
one, presenting its client certificate when it has one); connect and total timeouts
are always set; at most MAX_RESPONSE_BYTES of the response are read. Connections are
pooled and kept alive per (scheme, address, port, host, TLS settings).
"""

import errno
import http.client
import ipaddress
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.ssl_match_hostname import CertificateError

from subscriptions.certificates import ClientTls, ssl_context
from subscriptions.url_policy import Target, UnresolvableHost, UnsafeUrl, parse_target, resolve_allowed_addresses

_MAX_POOLS = 512
_CONNECTIONS_PER_POOL = 32
_CHUNK = 16 * 1024


@dataclass(frozen=True)
class HttpResult:
    status_code: int | None  # None when no response arrived
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""
    duration_ms: int = 0
    failure: str = ""  # why no answer came, when that says something of load: "timeout" or "refused"


class _Pools:
    """A bounded, thread-safe cache of keep-alive connection pools."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: OrderedDict[tuple, urllib3.HTTPConnectionPool] = OrderedDict()

    def get(self, target: Target, address: str, tls: ClientTls | None = None) -> urllib3.HTTPConnectionPool:
        tls = tls if target.scheme == "https" else None
        key = (target.scheme, address, target.port, target.host, tls)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._new_pool(target, address, tls)
            self._pools[key] = pool
            if len(self._pools) > _MAX_POOLS:
                _, oldest = self._pools.popitem(last=False)
                oldest.close()
            return pool

    @staticmethod
    def _new_pool(target: Target, address: str, tls: ClientTls | None) -> urllib3.HTTPConnectionPool:
        common: dict[str, Any] = {"maxsize": _CONNECTIONS_PER_POOL, "block": False, "retries": False}
        if tls is not None:  # urllib3 still checks the certificate and the host name against this context
            common["ssl_context"] = ssl_context(tls)
        if target.scheme == "https":
            return urllib3.HTTPSConnectionPool(
                address,
                target.port,
                cert_reqs=ssl.CERT_REQUIRED,
                server_hostname=target.host,
                assert_hostname=target.host,
                **common,
            )
        return urllib3.HTTPConnectionPool(address, target.port, **common)


_pools = _Pools()


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default_port = 443 if target.scheme == "https" else 80
    return host if target.port == default_port else f"{host}:{target.port}"


def post(
    url: str,
    *,
    headers: dict[str, str],
    body: bytes,
    connect_timeout: float,
    total_timeout: float,
    max_response_bytes: int,
    tls: ClientTls | None = None,
) -> HttpResult:
    """POST ``body`` to ``url`` (an https:// one with ``tls``'s client certificate and CA); never raises for
    network trouble, it is reported in ``error``."""
    started = time.monotonic()

    def failed(error: str, failure: str = "") -> HttpResult:
        return HttpResult(None, error=error, duration_ms=int((time.monotonic() - started) * 1000), failure=failure)

    try:
        target = parse_target(url)
        address = resolve_allowed_addresses(target.host, target.port)[0]
    except UnresolvableHost as exc:
        return failed(f"DNS lookup failed: {exc}")
    except UnsafeUrl as exc:
        return failed(f"Refused by the address policy: {exc}")

    try:
        pool = _pools.get(target, str(address), tls)
    except (ssl.SSLError, ValueError) as exc:  # stored TLS settings this OpenSSL no longer takes (checked at save)
        why = getattr(exc, "reason", None) or exc
        return failed(f"Not sent: OpenSSL cannot use the endpoint's TLS settings: {why}.")
    # total: the wait for the response headers gets what the connect left of it; the body
    # is read in whatever pieces arrive, checking the same deadline after each.
    timeout = urllib3.Timeout(total=total_timeout, connect=min(connect_timeout, total_timeout))
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": _host_header(target)},
            redirect=False,
            retries=False,
            timeout=timeout,
            preload_content=False,
            decode_content=False,
            assert_same_host=False,
        )
    except (Urllib3Error, OSError) as exc:
        error = _describe(exc, target, ipaddress.ip_address(address), timeout)
        if error.startswith("TLS handshake"):
            error += (
                " The receiver may not accept the client certificate (its CA, or its validity)."
                if tls and tls.certificate
                else " A receiver that demands a client certificate ends the handshake like this (mutual TLS)."
            )
        return failed(error, _failure(exc))
    except UnicodeEncodeError:
        return failed("Not sent: a header value is not ISO-8859-1 text.")
    received, error = _read_body(response, started=started, within=total_timeout, limit=max_response_bytes)
    return HttpResult(
        status_code=response.status,
        headers=dict(response.headers.items()),
        body=received,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _read_body(response: urllib3.BaseHTTPResponse, *, started: float, within: float, limit: int) -> tuple[bytes, str]:
    """Up to ``limit`` bytes of the body, read in whatever pieces arrive until ``within`` seconds after
    ``started``; and what went wrong, if anything (the status is kept whatever happens to the body)."""
    chunks: list[bytes] = []
    received = 0
    error = ""
    try:
        while received < limit:
            if time.monotonic() > started + within:
                error = f"Response body not received within {within:g} s (status {response.status} kept)."
                break
            chunk = response.read1(min(_CHUNK, limit - received))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    except (Urllib3Error, OSError) as exc:
        error = f"Reading the response body failed: {_cause(exc)} (status {response.status} kept)."
    else:
        if received >= limit and response.length_remaining != 0:  # None: no Content-Length
            error = f"Response body too large: the first {limit:,} bytes kept, the rest not read."
    finally:
        if error or received >= limit:
            response.close()  # unread or broken: do not reuse this connection
        response.release_conn()
    return b"".join(chunks), error


def _cause(exc: BaseException) -> BaseException:
    """The innermost reason urllib3 wrapped (``reason`` attributes, then ``__cause__``/``__context__``)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _failure(exc: Exception) -> str:
    """What a request that got no answer says of the receiver's load: it timed out, or refused the connection."""
    if isinstance(_cause(exc), ConnectionRefusedError):
        return "refused"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too, for urllib3's history
        return ""
    return "timeout" if isinstance(exc, urllib3.exceptions.TimeoutError) else ""


def _describe(exc: Exception, target: Target, address, timeout: urllib3.Timeout) -> str:
    """One plain sentence per way a request can fail, saying where to look."""
    cause = _cause(exc)
    where = f"{address} port {target.port}"
    if isinstance(cause, ConnectionRefusedError):
        return f"Connection refused by {where}: nothing is listening there (is the receiver running?)."
    if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"No route to {where}: the network or host is unreachable."
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f"Could not connect to {where}: {cause}."
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"Connecting to {where} timed out after {timeout.connect_timeout:g} s (a firewall dropping packets?)."
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f"Connected, but no response within {timeout.total:g} s: the receiver is too slow or stuck."
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate of {target.host} not trusted: {cause.verify_message or cause.reason}."
    if isinstance(cause, CertificateError):  # urllib3 matches the host name itself (the pool's assert_hostname)
        return f"TLS certificate of {target.host} not trusted: {cause}."
    if isinstance(exc, urllib3.exceptions.SSLError) or isinstance(cause, ssl.SSLError):
        return f"TLS handshake with {target.host} failed: {getattr(cause, 'reason', None) or cause}."
    if isinstance(cause, http.client.RemoteDisconnected):  # a ConnectionResetError too: ask it first
        return f"{where} closed the connection without answering."
    if isinstance(cause, ConnectionResetError):
        return f"Connection reset by {where} before it answered."
    return f"{type(exc).__name__}: {cause}"
