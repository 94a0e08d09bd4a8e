"""A real OAuth2 token endpoint on 127.0.0.1 for tests (client credentials grant, RFC 6749 4.4), and a receiver
responder that accepts only the tokens it issued that are still current.

The server checks what a gateway's authorization server checks: the grant type, the client's id and secret sent
by ``client_secret_basic`` (RFC 6749 2.3.1: form-encoded, then Basic) or ``client_secret_post``, and the scope
and audience it was told to expect. It records every request as it saw it and can be told to answer an error.
"""

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus

from tests.support.receiver import Received, Reply


@dataclass(frozen=True)
class TokenRequest:
    """One request to the token endpoint, as it arrived."""

    headers: dict[str, str]  # lower-case names
    form: dict[str, str]  # the form body, each field's first value
    client_auth: str  # "basic", "post", "both" or "none": where the client's credentials came
    client_id: str
    client_secret: str
    at: float  # time.monotonic()


@dataclass
class Error:
    """An error answer (RFC 6749 5.2): status and JSON body."""

    status: int
    body: dict[str, str] = field(default_factory=dict)


class TokenServer:
    """Issues Bearer tokens valid ``lifetime`` seconds (said in ``expires_in``) to one client.

    ``expires_in``: what the answer says, when it should differ from the real lifetime (None: left out).
    ``error``: answer it to every request while set. ``delay``: seconds each answer waits (so many callers
    pile up on one fetch).
    """

    def __init__(
        self,
        *,
        client_id: str = "hub-client",
        client_secret: str | None = None,
        lifetime: float = 2.0,
        scope: str | None = None,
        audience: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or "cs-" + secrets.token_urlsafe(24)
        self.lifetime = lifetime
        self.expires_in: float | None = lifetime
        self.scope = scope
        self.audience = audience
        self.error: Error | None = None
        self.delay = 0.0
        self.requests: list[TokenRequest] = []
        self._issued: dict[str, float] = {}  # token -> expires at (time.monotonic())
        self._revoked: set[str] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                status, answer = server._answer({k.lower(): v for k, v in self.headers.items()}, body)
                if server.delay:
                    time.sleep(server.delay)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="token"')
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/oauth/token") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "TokenServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def count(self) -> int:
        """How many token requests arrived."""
        with self._lock:
            return len(self.requests)

    def issued(self) -> list[str]:
        """Every token handed out, oldest first."""
        with self._lock:
            return list(self._issued)

    def is_current(self, token: str) -> bool:
        """Issued here, not revoked and not expired."""
        with self._lock:
            expires_at = self._issued.get(token)
            return expires_at is not None and token not in self._revoked and time.monotonic() < expires_at

    def revoke(self, token: str) -> None:
        with self._lock:
            self._revoked.add(token)

    def revoke_all(self) -> None:
        with self._lock:
            self._revoked.update(self._issued)

    def _answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        form = {name: values[0] for name, values in parse_qs(body.decode(), keep_blank_values=True).items()}
        request = _token_request(headers, form)
        with self._lock:
            self.requests.append(request)
        if self.error is not None:
            return self.error.status, self.error.body
        refused = self._refusal(request)
        if refused is not None:
            return refused
        token = "at-" + secrets.token_urlsafe(32)
        with self._lock:
            self._issued[token] = time.monotonic() + self.lifetime
        answer: dict = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return 200, answer

    def _refusal(self, request: TokenRequest) -> tuple[int, dict] | None:
        if request.client_auth not in ("basic", "post"):
            return 401, {"error": "invalid_client", "error_description": "Authenticate the client one way."}
        if (request.client_id, request.client_secret) != (self.client_id, self.client_secret):
            # RFC 6749 5.2: 401 when the client tried HTTP Basic, else 400.
            return (401 if request.client_auth == "basic" else 400), {"error": "invalid_client"}
        if request.form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if self.scope is not None and request.form.get("scope") != self.scope:
            return 400, {"error": "invalid_scope"}
        if self.audience is not None and request.form.get("audience") != self.audience:
            return 400, {"error": "invalid_request", "error_description": "Unknown audience."}
        return None


def _token_request(headers: dict[str, str], form: dict[str, str]) -> TokenRequest:
    basic = _basic_credentials(headers.get("authorization", ""))
    posted = (form["client_id"], form.get("client_secret", "")) if "client_id" in form else None
    if basic and posted:
        client_auth, (client_id, client_secret) = "both", basic
    elif basic:
        client_auth, (client_id, client_secret) = "basic", basic
    elif posted:
        client_auth, (client_id, client_secret) = "post", posted
    else:
        client_auth, client_id, client_secret = "none", "", ""
    return TokenRequest(headers, form, client_auth, client_id, client_secret, time.monotonic())


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(client id, client secret) of a Basic header, each form-decoded as RFC 6749 2.3.1 has them encoded."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    client_id, _, client_secret = base64.b64decode(value).decode().partition(":")
    return unquote_plus(client_id), unquote_plus(client_secret)


def current_token_responder(tokens: TokenServer, answered: list[int] | None = None):
    """A ``Receiver.responder`` like a gateway's: 200 to a Bearer token ``tokens`` issued that is current, 401
    (``invalid_token``) to anything else; each status is appended to ``answered`` when given."""

    def respond(received: Received) -> Reply:
        reply = _judge(received)
        if answered is not None:
            answered.append(reply.status)
        return reply

    def _judge(received: Received) -> Reply:
        scheme, _, token = received.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer" and tokens.is_current(token):
            return Reply(status=200, body=b"ok")
        return Reply(
            status=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            body=b'{"error": "invalid_token"}',
        )

    return respond
