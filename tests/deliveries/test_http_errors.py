"""Every way a delivery request can fail gets its own plain message, each provoked for real on 127.0.0.1."""

import datetime
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deliveries import http

pytestmark = pytest.mark.usefixtures("loopback_receivers")


def _post(url: str, *, connect_timeout: float = 2, total_timeout: float = 3, max_response_bytes: int = 1024):
    return http.post(
        url,
        headers={},
        body=b"{}",
        connect_timeout=connect_timeout,
        total_timeout=total_timeout,
        max_response_bytes=max_response_bytes,
    )


def _serve(handle: Callable[[socket.socket], None], *, wrap: ssl.SSLContext | None = None) -> Iterator[int]:
    """A one-connection-at-a-time server on 127.0.0.1 running ``handle`` per connection; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                handle(wrap.wrap_socket(conn, server_side=True) if wrap else conn)
            except OSError:
                pass
            finally:
                conn.close()

    threading.Thread(target=loop, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def _read_request(conn: socket.socket) -> None:
    """The whole request: headers, then as many body bytes as Content-Length says."""
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def test_a_closed_port_is_reported_as_refused_not_as_a_timeout():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now

    result = _post(f"http://127.0.0.1:{port}/hook")

    assert result.status_code is None
    assert result.error == (
        f"Connection refused by 127.0.0.1 port {port}: nothing is listening there (is the receiver running?)."
    )


def test_a_name_that_does_not_resolve_is_a_dns_failure():
    result = _post("http://no-such-host.invalid/hook")

    assert result.status_code is None
    assert result.error == "DNS lookup failed: The host 'no-such-host.invalid' cannot be resolved."


def test_an_address_the_policy_forbids_is_refused_without_connecting(settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": []}

    result = _post("http://127.0.0.1:9/hook")

    assert result.status_code is None
    assert result.error == (
        "Refused by the address policy: The host '127.0.0.1' resolves to 127.0.0.1, which is not a public address."
    )


def test_a_full_accept_queue_gives_a_connect_timeout():
    """Linux drops the SYNs a listener's full accept queue cannot take: the connect never completes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the queue (never accepted)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)

        result = _post(f"http://127.0.0.1:{port}/hook", connect_timeout=0.5, total_timeout=2)
    finally:
        for filler in fillers:
            filler.close()
        server.close()

    assert result.status_code is None
    assert result.error == (
        f"Connecting to 127.0.0.1 port {port} timed out after 0.5 s (a firewall dropping packets?)."
    )


@pytest.fixture
def silent_server():
    """Accepts, reads the request, never answers."""
    release = threading.Event()

    def handle(conn):
        _read_request(conn)
        release.wait(10)

    yield from _serve(handle)
    release.set()


def test_a_server_that_never_answers_is_a_read_timeout(silent_server):
    result = _post(f"http://127.0.0.1:{silent_server}/hook", total_timeout=0.5)

    assert result.status_code is None
    assert result.error == "Connected, but no response within 0.5 s: the receiver is too slow or stuck."


@pytest.fixture
def resetting_server():
    """Reads the request, then aborts the connection (RST: SO_LINGER with a zero timeout)."""

    def handle(conn):
        _read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    yield from _serve(handle)


def test_a_reset_connection_is_reported_as_reset(resetting_server):
    result = _post(f"http://127.0.0.1:{resetting_server}/hook")

    assert result.status_code is None
    assert result.error == f"Connection reset by 127.0.0.1 port {resetting_server} before it answered."


@pytest.fixture
def hanging_up_server():
    yield from _serve(_read_request)  # reads the request, then closes without a word


def test_a_server_that_hangs_up_without_answering(hanging_up_server):
    result = _post(f"http://127.0.0.1:{hanging_up_server}/hook")

    assert result.status_code is None
    assert result.error == f"127.0.0.1 port {hanging_up_server} closed the connection without answering."


@pytest.fixture
def untrusted_tls_server(tmp_path):
    """HTTPS on 127.0.0.1 with a self-signed certificate for localhost: no CA vouches for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    def handle(conn):
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    yield from _serve(handle, wrap=context)


def test_an_untrusted_certificate_is_a_tls_verification_failure(untrusted_tls_server):
    result = _post(f"https://localhost:{untrusted_tls_server}/hook")

    assert result.status_code is None
    assert result.error.startswith("TLS certificate of localhost not trusted: ")
    assert "self-signed certificate" in result.error


@pytest.fixture
def big_answer_server():
    def handle(conn):
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)

    yield from _serve(handle)


def test_a_response_body_over_the_limit_is_cut_and_said_so(big_answer_server):
    result = _post(f"http://127.0.0.1:{big_answer_server}/hook", max_response_bytes=1024)

    assert result.status_code == 200
    assert result.body == b"x" * 1024
    assert result.error == "Response body too large: the first 1,024 bytes kept, the rest not read."


@pytest.fixture
def exact_answer_server():
    def handle(conn):
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + b"y" * 1024)

    yield from _serve(handle)


def test_a_body_exactly_at_the_limit_is_not_an_error(exact_answer_server):
    result = _post(f"http://127.0.0.1:{exact_answer_server}/hook", max_response_bytes=1024)

    assert (result.status_code, len(result.body), result.error) == (200, 1024, "")
