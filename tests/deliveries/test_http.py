"""deliveries.http against misbehaving servers on 127.0.0.1."""

import socket
import threading
import time

import pytest

from deliveries import http


@pytest.fixture
def trickling_server():
    """Answers 200 at once, then sends its body one byte every 0.3 s."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.3)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    server.close()


def test_a_trickling_response_is_cut_at_the_total_timeout(trickling_server, loopback_receivers):
    started = time.monotonic()

    result = http.post(
        trickling_server, headers={}, body=b"{}", connect_timeout=1, total_timeout=1.0, max_response_bytes=65536
    )

    assert time.monotonic() - started < 3  # not 1000 bytes x 0.3 s
    assert result.status_code == 200
    assert "not received within 1 s" in result.error


def test_a_header_value_that_is_not_latin_1_is_reported_not_raised(loopback_receivers, receiver):

    result = http.post(
        receiver.url(),
        headers={"X-Token": "tok€"},
        body=b"{}",
        connect_timeout=1,
        total_timeout=2,
        max_response_bytes=1024,
    )

    assert result.status_code is None
    assert "ISO-8859-1" in result.error
    assert receiver.requests == []
