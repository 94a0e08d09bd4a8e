"""End to end, receivers behind gateways: a real Celery worker and broker, the real database, and real servers on
127.0.0.1: a token endpoint issuing 2 s tokens and a receiver taking only current ones (OAuth2 client credentials),
an HTTPS receiver demanding a client certificate from a CA made here (mutual TLS), and a receiver verifying
``v1a`` signatures with PyNaCl holding only the public key. No secret, token or key shows in the worker's log or
in the stored attempts."""

import base64
import json
import time
import urllib.request

import pytest
from nacl.signing import VerifyKey

from accounts.models import Role
from accounts.services import create_api_key
from deliveries.models import Attempt, Delivery, DeliveryStatus
from subscriptions.models import Endpoint, EndpointSecret
from tests.factories import make_endpoint
from tests.support import processes
from tests.support.receiver import Received, Receiver
from tests.support.tls import CertificateAuthority, Pair, server_context
from tests.support.token_server import TokenServer, current_token_responder
from tests.support.waiting import wait_until
from webhookhub import publish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@pytest.fixture
def token_server():
    server = TokenServer(lifetime=2.0).start()
    yield server
    server.stop()


def _oauth2_endpoint(tenant, server: TokenServer, url: str) -> Endpoint:
    auth = {
        "token_url": server.url(),
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "client_auth": "basic",
    }
    return make_endpoint(tenant, url, auth_type="oauth2", auth=auth).endpoint


def _start_one_process_worker(e2e) -> processes.Process:
    """A worker with a single pool process (so one token cache sees every send), logging at DEBUG."""
    processes.purge_queue(e2e.env)
    worker = e2e.start_worker(concurrency=1, log_level="DEBUG")
    e2e.start_beat()
    return worker


def _succeeded(events: list) -> int:
    return Delivery.objects.filter(event__in=events, status=DeliveryStatus.SUCCEEDED).count()


def _stored_attempts(endpoints: list[Endpoint]) -> str:
    """Everything recorded about the endpoints' attempts, as text."""
    rows = Attempt.objects.filter(delivery__endpoint__in=endpoints).values("request_headers", "error", "response_body")
    return json.dumps(list(rows))


def _signing_material(endpoints: list[Endpoint]) -> list[str]:
    """Every v1 secret and v1a private key of the endpoints, with and without its prefix."""
    values = EndpointSecret.objects.filter(endpoint__in=endpoints).values_list("secret", flat=True)
    return [text for value in values for text in (value, value.split("_", 1)[1])]


def _key_lines(pair: Pair) -> list[str]:
    return [line for line in pair.key.splitlines() if line and not line.startswith("-----")]


def _assert_nothing_secret_shows(e2e, endpoints: list[Endpoint], secrets: list[str]) -> None:
    """No secret in the processes' output or in what was stored about the attempts."""
    secrets = [secret for secret in [*secrets, *_signing_material(endpoints)] if secret]
    for where, text in (("the worker's log", e2e.logs()), ("the stored attempts", _stored_attempts(endpoints))):
        shown = [secret[:12] + "..." for secret in secrets if secret in text]
        assert not shown, f"{len(shown)} secret(s) in {where}: {shown}"
        assert "whsk_" not in text and "PRIVATE KEY" not in text, where


def _bearer(request: Received) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ")


def test_fifty_deliveries_over_five_seconds_cost_a_handful_of_tokens_and_all_arrive(e2e, tenant, token_server):
    answered: list[int] = []
    receiver = Receiver().start()
    receiver.responder = current_token_responder(token_server, answered=answered)
    try:
        endpoint = _oauth2_endpoint(tenant, token_server, receiver.url())
        e2e.start_all()

        events, started = [], time.monotonic()
        for n in range(50):
            events.append(publish(tenant=tenant, type="message.received", data={"n": n}))
            time.sleep(max(0.0, started + (n + 1) * 0.1 - time.monotonic()))
        wait_until(lambda: _succeeded(events) == 50, timeout=60, message=f"{_succeeded(events)} of 50 succeeded")
    finally:
        receiver.stop()

    attempts = list(Attempt.objects.filter(delivery__endpoint=endpoint).values_list("number", "status_code"))
    assert attempts == [(1, 200)] * 50  # each arrived on its first attempt
    arrived = {
        request.headers["webhook-id"]
        for request, status in zip(receiver.requests, answered, strict=True)
        if status == 200
    }
    assert arrived == {event.pk for event in events}
    assert all(_bearer(request) in token_server.issued() for request in receiver.requests)
    assert 2 <= token_server.count <= 8, f"{token_server.count} token requests for 50 deliveries"
    # A 401 (a token that expired on its way) was sent again at once with a fresh token: no more than that.
    assert answered.count(200) == 50 and len(answered) == 50 + answered.count(401)
    _assert_nothing_secret_shows(e2e, [endpoint], [token_server.client_secret, *token_server.issued()])


def test_a_401_to_an_expired_token_is_retried_once_with_a_fresh_token_in_the_same_attempt(e2e, tenant, token_server):
    token_server.lifetime = token_server.expires_in = 3600.0  # the worker keeps it; the gateway will not
    answered: list[int] = []
    receiver = Receiver().start()
    receiver.responder = current_token_responder(token_server, answered=answered)
    try:
        endpoint = _oauth2_endpoint(tenant, token_server, receiver.url())
        _start_one_process_worker(e2e)
        first = publish(tenant=tenant, type="message.received", data={"n": 1})
        wait_until(lambda: _succeeded([first]) == 1, timeout=30)
        [cached] = token_server.issued()
        token_server.revoke(cached)  # expired early at the gateway, as a revoked or shortened token is

        second = publish(tenant=tenant, type="message.received", data={"n": 2})
        wait_until(lambda: _succeeded([second]) == 1, timeout=30, message="the second delivery did not succeed")
    finally:
        receiver.stop()

    [_, fresh] = token_server.issued()
    assert [(_bearer(request), status) for request, status in zip(receiver.requests, answered, strict=True)] == [
        (cached, 200),
        (cached, 401),
        (fresh, 200),
    ]
    assert [request.headers["webhook-id"] for request in receiver.requests] == [first.pk, second.pk, second.pk]
    attempts = list(Attempt.objects.filter(delivery__event=second).values_list("number", "status_code", "outcome"))
    assert attempts == [(1, 200, "success")]
    assert token_server.count == 2
    _assert_nothing_secret_shows(e2e, [endpoint], [token_server.client_secret, cached, fresh])


def test_a_tls_receiver_takes_the_endpoint_with_the_client_certificate_and_refuses_the_one_without(e2e, tenant):
    ca = CertificateAuthority()
    pair = ca.issue("hub client")
    receiver = Receiver(tls=server_context(ca.issue("127.0.0.1", server=True), client_ca=ca.certificate)).start()
    try:
        with_pair = make_endpoint(
            tenant,
            receiver.url("/with"),
            tls_client_certificate=pair.certificate,
            tls_client_key=pair.key,
            tls_ca_certificate=ca.certificate,
        ).endpoint
        without = make_endpoint(tenant, receiver.url("/without"), tls_ca_certificate=ca.certificate).endpoint
        e2e.start_all()

        events = [publish(tenant=tenant, type="message.received", data={"n": n}) for n in range(3)]
        wait_until(lambda: _succeeded(events) == 3, timeout=30, message="the endpoint with the pair did not get all")
        refused = wait_until(
            lambda: list(Attempt.objects.filter(delivery__endpoint=without).values_list("status_code", "error")),
            timeout=30,
        )
    finally:
        receiver.stop()

    assert Delivery.objects.filter(endpoint=with_pair, status=DeliveryStatus.SUCCEEDED).count() == 3
    assert {request.path for request in receiver.requests} == {"/with"}
    assert all(status is None and error.startswith("TLS handshake with 127.0.0.1 failed") for status, error in refused)
    assert "client certificate" in refused[0][1]
    _assert_nothing_secret_shows(e2e, [with_pair, without], _key_lines(pair))


def _api_get(port: int, api_key: str, path: str) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1{path}", headers={"Authorization": f"Bearer {api_key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def test_v1a_is_verified_by_a_receiver_holding_only_the_public_key_from_the_api(e2e, tenant, receiver):
    endpoint = make_endpoint(tenant, receiver.url(), signature_scheme="v1a").endpoint
    api_key = create_api_key(tenant=tenant, role=Role.ADMIN).key
    web, port = processes.start_web(e2e.env, e2e.log_dir)
    e2e._started.append(web)  # stopped with the others
    answered = _api_get(port, api_key, f"/endpoints/{endpoint.pk}/public-key/")
    whpk = json.loads(answered)["public_key"]
    verify_key = VerifyKey(base64.b64decode(whpk.removeprefix("whpk_")))  # all the receiver holds
    read = _api_get(port, api_key, f"/endpoints/{endpoint.pk}/")
    e2e.start_all()

    events = [publish(tenant=tenant, type="message.received", data={"n": n}) for n in range(3)]

    requests = receiver.wait_for(3)
    assert {request.headers["webhook-id"] for request in requests} == {event.pk for event in events}
    for request in requests:
        headers = request.headers
        [signature] = headers["webhook-signature"].split(" ")
        assert signature.startswith("v1a,")
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request.body
        assert verify_key.verify(signed, base64.b64decode(signature.removeprefix("v1a,"))) == signed
    wait_until(lambda: _succeeded(events) == 3, timeout=30)
    for text in (answered, read):
        assert "whsk_" not in text and not any(secret in text for secret in _signing_material([endpoint]))
    _assert_nothing_secret_shows(e2e, [endpoint], [])
