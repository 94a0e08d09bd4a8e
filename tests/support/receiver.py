"""A real HTTP receiver on 127.0.0.1 for tests: records every request, answers as scripted."""

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds to wait before answering (after the body was read)


class Receiver:
    """``replies`` are used in order, then ``default``; ``responder`` overrides both when set."""

    def __init__(self, port: int = 0, *, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: a server context (``tests.support.tls.server_context``): the receiver speaks HTTPS."""
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self.responder: Callable[[Received], Reply] | None = None
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                at = time.time()  # the request line and headers are in
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, at)
                with receiver._lock:
                    receiver.requests.append(received)
                    reply = (
                        receiver.responder(received)
                        if receiver.responder
                        else (receiver.replies.pop(0) if receiver.replies else receiver.default)
                    )
                    receiver._arrived.notify_all()
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_PUT = do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        if tls is not None:  # a failed handshake is an OSError that socketserver drops: no request recorded
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def start(self) -> "Receiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until ``count`` requests arrived; returns them (fails the test on timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"receiver got {len(self.requests)} request(s), expected {count}")
                self._arrived.wait(remaining)
            return list(self.requests)
