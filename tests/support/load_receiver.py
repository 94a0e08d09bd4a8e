"""A real HTTP receiver on 127.0.0.1 whose answer depends on how many requests it has open: the receivers of
adaptive concurrency's tests and benchmark (one that answers 429 above 4 open, one that slows down above 8)."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of new connections is not refused


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic() when its headers were in
    wall: float  # time.time() then (to compare with times the database holds)
    open: int  # requests open at the receiver then, itself included
    status: int


class LoadReceiver:
    """``answer(open)`` gives (status, seconds to take) for a request that arrives with ``open`` requests open.

    A request stops counting as open before its answer is written, so a client that starts its next request
    when it has read an answer never finds more open than it has itself.
    """

    def __init__(self, answer: Callable[[int], tuple[int, float]]) -> None:
        self.answer = answer
        self.arrivals: list[Arrival] = []
        self._open = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver._open += 1
                    status, seconds = receiver.answer(receiver._open)
                    receiver.arrivals.append(Arrival(time.monotonic(), time.time(), receiver._open, status))
                time.sleep(seconds)
                with receiver._lock:
                    receiver._open -= 1
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> "LoadReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def statuses(self) -> list[int]:
        with self._lock:
            return [arrival.status for arrival in self.arrivals]
