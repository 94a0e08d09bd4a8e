"""OAuth2 client credentials against a real token endpoint on 127.0.0.1: the per-endpoint token cache
(``deliveries.oauth2.Tokens``) and ``send_one`` carrying its token to a receiver that accepts only current ones."""

import base64
import json
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from deliveries import oauth2
from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus
from deliveries.services.sending import SendResult, send_one
from ground.conf import webhookhub_settings
from subscriptions.models import Endpoint
from subscriptions.selectors import signing_secrets
from subscriptions.services import update_endpoint
from tests.factories import make_endpoint
from tests.support.receiver import Reply
from tests.support.sending import drain_due
from tests.support.token_server import Error, TokenServer, current_token_responder
from webhookhub import publish

pytestmark = pytest.mark.usefixtures("loopback_receivers")

NOWHERE = "http://127.0.0.1:9/hook"  # an endpoint URL for tests that only take tokens


class ManualClock:
    """The cache's clock, moved by the test (the token requests still take real time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_server():
    server = TokenServer().start()
    yield server
    server.stop()


def _auth(server: TokenServer, **changes) -> dict:
    return {
        "type": "oauth2",
        "token_url": server.url(),
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "client_auth": "basic",
    } | changes


def _oauth2_endpoint(tenant, server: TokenServer, url: str = NOWHERE, **changes) -> Endpoint:
    auth = _auth(server, **changes)
    auth.pop("type")
    return make_endpoint(tenant, url, auth_type="oauth2", auth=auth).endpoint


def _ask_at_once(tokens: oauth2.Tokens, endpoints: list[Endpoint]) -> list:
    """Each endpoint object asks for its token from its own thread, all released together: the tokens (or the
    TokenErrors) they got."""
    start = threading.Barrier(len(endpoints))
    results: list = [None] * len(endpoints)

    def ask(index: int) -> None:
        start.wait()
        try:
            results[index] = tokens.token(endpoints[index], timeout=5)
        except oauth2.TokenError as exc:
            results[index] = exc

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(len(endpoints))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _copies(endpoint: Endpoint, count: int) -> list[Endpoint]:
    """The endpoint read ``count`` times, as sender threads hold it (one object per claim)."""
    return [Endpoint.objects.get(pk=endpoint.pk) for _ in range(count)]


# --- the token cache -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "last_cached_at", "renewed_at"),
    [
        (2.0, 1.79, 1.81),  # a tenth of its life early
        (3600.0, 3569.9, 3570.1),  # at most 30 s early
    ],
)
def test_a_token_is_kept_until_shortly_before_it_expires(
    db, tenant, token_server, lifetime, last_cached_at, renewed_at
):
    token_server.lifetime = token_server.expires_in = lifetime
    endpoint = _oauth2_endpoint(tenant, token_server)
    clock = ManualClock()
    tokens = oauth2.Tokens(clock=clock)
    started = clock.now

    first = tokens.token(endpoint, timeout=5)
    clock.now = started + last_cached_at
    assert tokens.token(endpoint, timeout=5) == first
    assert token_server.count == 1 == tokens.fetches

    clock.now = started + renewed_at
    renewed = tokens.token(endpoint, timeout=5)

    assert renewed != first
    assert token_server.issued() == [first, renewed]
    assert token_server.count == 2 == tokens.fetches


def test_eight_threads_asking_at_once_cause_one_fetch(db, tenant, token_server):
    token_server.delay = 0.3  # the first fetch is still on its way when the others ask
    endpoint = _oauth2_endpoint(tenant, token_server)
    tokens = oauth2.Tokens()

    got = _ask_at_once(tokens, _copies(endpoint, 8))

    assert token_server.count == 1
    assert got == [token_server.issued()[0]] * 8


def test_an_expired_token_costs_one_new_fetch_however_many_ask(db, tenant, token_server):
    endpoint = _oauth2_endpoint(tenant, token_server)
    tokens = oauth2.Tokens()
    first = tokens.token(endpoint, timeout=5)
    time.sleep(2.05)  # the 2 s token has expired at the token server too
    assert not token_server.is_current(first)
    token_server.delay = 0.3

    got = _ask_at_once(tokens, _copies(endpoint, 8))

    assert token_server.count == 2
    [_, renewed] = token_server.issued()
    assert got == [renewed] * 8
    assert token_server.is_current(renewed)


def test_many_401s_to_one_token_at_once_cost_one_fetch(db, tenant, token_server):
    endpoint = _oauth2_endpoint(tenant, token_server)
    tokens = oauth2.Tokens()
    rejected = tokens.token(endpoint, timeout=5)
    token_server.delay = 0.3
    start, got = threading.Barrier(8), []

    def refresh(copy: Endpoint) -> None:
        start.wait()
        got.append(tokens.refresh(copy, rejected=rejected, timeout=5))

    threads = [threading.Thread(target=refresh, args=(copy,)) for copy in _copies(endpoint, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    [_, fresh] = token_server.issued()
    assert got == [fresh] * 8
    assert token_server.count == 2


def test_a_token_answered_without_expires_in_is_kept_five_minutes_less_its_margin(db, tenant, token_server):
    token_server.expires_in = None
    endpoint = _oauth2_endpoint(tenant, token_server)
    clock = ManualClock()
    tokens = oauth2.Tokens(clock=clock)
    started = clock.now

    first = tokens.token(endpoint, timeout=5)
    clock.now = started + 269
    assert tokens.token(endpoint, timeout=5) == first
    clock.now = started + 271
    assert tokens.token(endpoint, timeout=5) != first
    assert token_server.count == 2


@pytest.mark.parametrize("client_auth", ["basic", "post"])
def test_the_client_authenticates_as_configured(db, tenant, token_server, client_auth):
    endpoint = _oauth2_endpoint(tenant, token_server, client_auth=client_auth)

    token = oauth2.Tokens().token(endpoint, timeout=5)

    [request] = token_server.requests
    assert token == token_server.issued()[0]
    assert request.client_auth == client_auth
    assert (request.client_id, request.client_secret) == (token_server.client_id, token_server.client_secret)
    assert request.form["grant_type"] == "client_credentials"
    if client_auth == "basic":
        assert request.headers["authorization"].startswith("Basic ")
        assert "client_secret" not in request.form and "client_id" not in request.form
    else:
        assert "authorization" not in request.headers
        assert (request.form["client_id"], request.form["client_secret"]) == (
            token_server.client_id,
            token_server.client_secret,
        )


# RFC 6749 2.3.1: with HTTP Basic the client id and secret are each form-encoded first, and servers such as Spring
# Authorization Server and Keycloak decode them ("+" is a space, "%xx" a byte). Secrets made of base64 hold "+".
SPECIAL_ID, SPECIAL_SECRET = "hub client+1", "s3cr+t/with:colon%&=end"


@pytest.mark.parametrize(
    "client_auth",
    ["basic", "post"],
)
def test_an_id_and_secret_with_special_characters_arrive_as_they_are(db, tenant, client_auth):
    server = TokenServer(client_id=SPECIAL_ID, client_secret=SPECIAL_SECRET).start()
    try:
        endpoint = _oauth2_endpoint(tenant, server, client_auth=client_auth)

        token = oauth2.Tokens().token(endpoint, timeout=5)
    finally:
        server.stop()

    [request] = server.requests
    assert token == server.issued()[0]
    assert (request.client_auth, request.client_id, request.client_secret) == (client_auth, SPECIAL_ID, SPECIAL_SECRET)


def test_scope_and_audience_are_sent(db, tenant):
    server = TokenServer(scope="webhooks:write events.read", audience="https://api.receiver.example").start()
    try:
        endpoint = _oauth2_endpoint(
            tenant, server, scope="webhooks:write events.read", audience="https://api.receiver.example"
        )

        oauth2.Tokens().token(endpoint, timeout=5)

        [request] = server.requests
    finally:
        server.stop()
    assert request.form == {
        "grant_type": "client_credentials",
        "scope": "webhooks:write events.read",
        "audience": "https://api.receiver.example",
    }


def test_no_scope_or_audience_is_sent_when_none_is_set(db, tenant, token_server):
    endpoint = _oauth2_endpoint(tenant, token_server)

    oauth2.Tokens().token(endpoint, timeout=5)

    [request] = token_server.requests
    assert request.form == {"grant_type": "client_credentials"}
    assert request.headers["accept"] == "application/json"


def test_a_refused_token_request_says_what_the_token_endpoint_answered(db, tenant, token_server):
    token_server.error = Error(400, {"error": "invalid_client", "error_description": "Client authentication failed"})
    endpoint = _oauth2_endpoint(tenant, token_server)

    with pytest.raises(oauth2.TokenError) as raised:
        oauth2.Tokens().token(endpoint, timeout=5)

    message = str(raised.value)
    assert "Token endpoint 127.0.0.1 answered 400 invalid_client (Client authentication failed)." == message
    assert token_server.client_secret not in message


@pytest.mark.parametrize(("client_auth", "status"), [("basic", 401), ("post", 400)])
def test_a_wrong_client_secret_is_named_by_the_answer_never_shown(db, tenant, token_server, client_auth, status):
    endpoint = _oauth2_endpoint(tenant, token_server, client_auth=client_auth, client_secret="wrong-secret-4d9f1a")

    with pytest.raises(oauth2.TokenError) as raised:
        oauth2.Tokens().token(endpoint, timeout=5)

    assert f"answered {status} invalid_client" in str(raised.value)
    assert "wrong-secret-4d9f1a" not in str(raised.value)


def test_a_token_endpoint_echoing_the_secret_does_not_put_it_in_the_error(db, tenant, token_server):
    token_server.error = Error(
        401, {"error": "invalid_client", "error_description": f"bad secret {token_server.client_secret} for client"}
    )
    endpoint = _oauth2_endpoint(tenant, token_server)

    with pytest.raises(oauth2.TokenError) as raised:
        oauth2.Tokens().token(endpoint, timeout=5)

    assert token_server.client_secret not in str(raised.value)
    assert "bad secret **** for client" in str(raised.value)


def test_a_secret_echoed_across_the_cut_of_a_long_description_shows_no_part_of_it(db, tenant, token_server):
    description = "x" * 195 + f" {token_server.client_secret} was wrong"  # the cut at 200 falls inside it
    token_server.error = Error(401, {"error": "invalid_client", "error_description": description})
    endpoint = _oauth2_endpoint(tenant, token_server)

    with pytest.raises(oauth2.TokenError) as raised:
        oauth2.Tokens().token(endpoint, timeout=5)

    assert token_server.client_secret[:4] not in str(raised.value)
    assert str(raised.value).endswith("x ****).")


def test_a_token_endpoint_echoing_the_basic_credentials_does_not_put_them_in_the_error(db, tenant, token_server):
    endpoint = _oauth2_endpoint(tenant, token_server)
    credentials = base64.b64encode(f"{token_server.client_id}:{token_server.client_secret}".encode()).decode()
    token_server.error = Error(401, {"error": "invalid_client", "error_description": f"got Basic {credentials}"})

    with pytest.raises(oauth2.TokenError) as raised:
        oauth2.Tokens().token(endpoint, timeout=5)

    assert credentials not in str(raised.value)
    assert "(got Basic ****)" in str(raised.value)


def test_no_secret_or_token_shows_in_the_cache_objects_reprs(db, tenant, token_server):
    endpoint = _oauth2_endpoint(tenant, token_server)
    tokens = oauth2.Tokens()
    token = tokens.token(endpoint, timeout=5)

    shown = repr(oauth2.Client.of(endpoint)) + repr(tokens._entry(endpoint))

    assert token_server.client_secret not in shown and token not in shown
    assert token_server.client_id in shown  # the rest is there to read


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"token_type": "Bearer", "expires_in": 60}, "answered without an access_token"),
        ({"access_token": "abc", "token_type": "mac"}, "answered a token of type 'mac'; only Bearer is sent"),
        ({"access_token": "line\nbreak", "token_type": "Bearer"}, "an access_token that cannot go in a header"),
    ],
)
def test_an_unusable_token_answer_is_an_error(db, tenant, token_server, answer, said):
    token_server.error = Error(200, answer)  # answered as it is, with 200
    endpoint = _oauth2_endpoint(tenant, token_server)

    with pytest.raises(oauth2.TokenError, match=said):
        oauth2.Tokens().token(endpoint, timeout=5)


def test_a_token_endpoint_that_does_not_answer_in_time_is_an_error(db, tenant, token_server):
    token_server.delay = 3
    endpoint = _oauth2_endpoint(tenant, token_server)
    started = time.monotonic()

    with pytest.raises(oauth2.TokenError, match=r"Token request to 127\.0\.0\.1 failed: .*no response within 0\.5 s"):
        oauth2.Tokens().token(endpoint, timeout=0.5)

    assert time.monotonic() - started < 2


def test_a_failure_is_the_answer_for_a_few_seconds_no_stampede(db, tenant, token_server):
    token_server.error = Error(503, {"error": "temporarily_unavailable"})
    token_server.delay = 0.2
    endpoint = _oauth2_endpoint(tenant, token_server)
    clock = ManualClock()
    tokens = oauth2.Tokens(clock=clock)
    started = clock.now

    got = _ask_at_once(tokens, _copies(endpoint, 8))

    assert token_server.count == 1
    assert all(isinstance(result, oauth2.TokenError) for result in got)
    assert {str(result) for result in got} == {"Token endpoint 127.0.0.1 answered 503 temporarily_unavailable."}
    token_server.error, token_server.delay = None, 0.0
    clock.now = started + oauth2.FAILURE_HOLD_SECONDS - 0.1
    with pytest.raises(oauth2.TokenError, match="answered 503"):
        tokens.token(endpoint, timeout=5)
    assert token_server.count == 1

    clock.now = started + oauth2.FAILURE_HOLD_SECONDS + 0.1
    assert tokens.token(endpoint, timeout=5) == token_server.issued()[0]
    assert token_server.count == 2


def test_changed_oauth2_settings_take_a_new_token(db, tenant):
    server = TokenServer().start()
    try:
        endpoint = _oauth2_endpoint(tenant, server, scope="read")
        tokens = oauth2.Tokens()
        first = tokens.token(endpoint, timeout=5)
        assert tokens.token(Endpoint.objects.get(pk=endpoint.pk), timeout=5) == first  # read again, unchanged

        auth = _auth(server, scope="read write")
        auth.pop("type")
        update_endpoint(endpoint=endpoint, auth=auth)
        second = tokens.token(Endpoint.objects.get(pk=endpoint.pk), timeout=5)
    finally:
        server.stop()

    assert second != first
    assert [request.form.get("scope") for request in server.requests] == ["read", "read write"]


def test_sends_holding_the_old_and_the_new_settings_do_not_replace_each_others_token(db, tenant, token_server):
    endpoint = _oauth2_endpoint(tenant, token_server, scope="read")
    before_change = Endpoint.objects.get(pk=endpoint.pk)  # a claim made before the change, still sending
    auth = _auth(token_server, scope="read write")
    auth.pop("type")
    update_endpoint(endpoint=endpoint, auth=auth)
    after_change = Endpoint.objects.get(pk=endpoint.pk)
    tokens = oauth2.Tokens()

    taken = [tokens.token(held, timeout=5) for held in (before_change, after_change) * 3]

    assert token_server.count == 2, "one token per setting, not one per switch"
    assert taken[0::2] == [taken[0]] * 3 and taken[1::2] == [taken[1]] * 3 and taken[0] != taken[1]


def test_the_token_url_obeys_the_address_policy_when_sending(db, tenant, token_server, settings):
    endpoint = _oauth2_endpoint(tenant, token_server)  # saved while the loopback network was allowed
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": []}

    with pytest.raises(oauth2.TokenError) as raised:
        oauth2.Tokens().token(endpoint, timeout=5)

    assert "Refused by the address policy" in str(raised.value)
    assert "127.0.0.1" in str(raised.value) and "not a public address" in str(raised.value)
    assert token_server.client_secret not in str(raised.value)
    assert token_server.count == 0


def test_an_http_token_url_is_refused_where_https_is_required(db, tenant, token_server, settings):
    endpoint = _oauth2_endpoint(tenant, token_server)
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "REQUIRE_HTTPS": True}

    with pytest.raises(oauth2.TokenError, match="only delivers to https:// URLs"):
        oauth2.Tokens().token(endpoint, timeout=5)

    assert token_server.count == 0


def test_a_private_token_url_is_refused_at_save(db, tenant, token_server, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": []}

    with pytest.raises(ValidationError) as raised:
        _oauth2_endpoint(tenant, token_server, url="https://93.184.216.34/hook")

    assert "The token_url is refused" in str(raised.value.message_dict["auth"])
    assert not Endpoint.objects.filter(tenant=tenant).exists()


# --- send_one with an OAuth2 endpoint ----------------------------------------------------------------------------


def _delivery(endpoint: Endpoint, n: int = 1) -> Delivery:
    event = publish(tenant=endpoint.tenant, type="message.received", data={"n": n}, endpoint_ids=[endpoint.pk])
    return Delivery.objects.select_related("event", "endpoint").get(event=event, endpoint=endpoint)


def _send(delivery: Delivery) -> SendResult:
    """One attempt as a sender thread makes it (no recording)."""
    secrets = signing_secrets([delivery.endpoint], now=timezone.now())[delivery.endpoint_id]
    return send_one(delivery, secrets, webhookhub_settings())


def _bearer(request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    assert scheme == "Bearer"
    return token


@pytest.fixture
def gateway(receiver, token_server):
    """The receiver behind a gateway that accepts only current tokens of ``token_server``."""
    receiver.answered = []
    receiver.responder = current_token_responder(token_server, answered=receiver.answered)
    return receiver


@pytest.mark.django_db(transaction=True)  # the worker records from its own connection
def test_the_request_carries_the_current_token_and_the_log_never_does(tenant, token_server, gateway):
    endpoint = _oauth2_endpoint(tenant, token_server, url=gateway.url())

    sent = _send(_delivery(endpoint))
    Delivery.objects.all().delete()  # sent, not recorded: the worker below would send it again
    delivery = _delivery(endpoint, 2)
    drain_due()

    [token] = token_server.issued()
    assert sent.result.status_code == 200 and sent.request_made
    assert [_bearer(request) for request in gateway.requests] == [token, token]
    assert sent.masked_headers["Authorization"] == f"Bearer ****{token[-4:]}"
    assert token not in json.dumps(sent.masked_headers)
    [attempt] = Attempt.objects.filter(delivery=delivery)
    assert (attempt.status_code, attempt.outcome) == (200, AttemptOutcome.SUCCESS)
    assert token not in json.dumps(attempt.request_headers)
    assert token_server.client_secret not in json.dumps(attempt.request_headers)


@pytest.mark.django_db(transaction=True)
def test_the_signature_timestamp_is_taken_after_a_slow_token_fetch(tenant, token_server, gateway):
    token_server.delay = 1.5
    endpoint = _oauth2_endpoint(tenant, token_server, url=gateway.url())

    sent = _send(_delivery(endpoint))

    [request] = gateway.requests
    assert sent.result.status_code == 200
    assert int(request.headers["webhook-timestamp"]) >= int(sent.started_at.timestamp()) + 1  # not before the fetch


@pytest.mark.django_db(transaction=True)
def test_a_401_to_a_revoked_token_is_sent_again_with_a_fresh_one_within_the_attempt(tenant, token_server, gateway):
    endpoint = _oauth2_endpoint(tenant, token_server, url=gateway.url())
    assert _send(_delivery(endpoint)).result.status_code == 200
    [revoked] = token_server.issued()
    token_server.revoke(revoked)  # the gateway no longer takes it; the sender still holds it
    delivery = _delivery(endpoint, 2)

    sent = _send(delivery)

    [_, fresh] = token_server.issued()
    assert sent.result.status_code == 200 and sent.request_made
    assert [_bearer(request) for request in gateway.requests] == [revoked, revoked, fresh]
    assert token_server.count == 2
    assert fresh not in json.dumps(sent.masked_headers)


@pytest.mark.django_db(transaction=True)
def test_the_refresh_on_401_is_one_recorded_attempt(tenant, token_server, gateway):
    endpoint = _oauth2_endpoint(tenant, token_server, url=gateway.url())
    _send(_delivery(endpoint))  # the process's cache (the worker's threads share it) holds the token
    Delivery.objects.all().delete()
    token_server.revoke_all()
    delivery = _delivery(endpoint, 2)

    drain_due()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    [attempt] = Attempt.objects.filter(delivery=delivery)
    assert (attempt.number, attempt.status_code, attempt.outcome, attempt.error) == (1, 200, "success", "")
    first, fresh = token_server.issued()
    assert [_bearer(request) for request in gateway.requests] == [first, first, fresh]
    assert gateway.answered == [200, 401, 200]


@pytest.mark.django_db(transaction=True)
def test_a_second_401_is_the_attempts_result(tenant, token_server, receiver):
    receiver.default = Reply(status=401, body=b'{"error": "insufficient_scope"}')
    endpoint = _oauth2_endpoint(tenant, token_server, url=receiver.url())

    sent = _send(_delivery(endpoint))

    first, fresh = token_server.issued()
    assert sent.result.status_code == 401
    assert [_bearer(request) for request in receiver.requests] == [first, fresh]
    assert token_server.count == 2


@pytest.mark.django_db(transaction=True)
def test_a_receiver_refusing_fresh_tokens_too_does_not_make_each_delivery_fetch_one(tenant, token_server, receiver):
    receiver.default = Reply(status=401)
    endpoint = _oauth2_endpoint(tenant, token_server, url=receiver.url())
    _send(_delivery(endpoint))  # 401, a fresh token, 401 again

    later = [_send(_delivery(endpoint, n)) for n in range(2, 5)]

    assert token_server.count == 2
    assert [sent.result.status_code for sent in later] == [401] * 3
    assert "The receiver refused a fresh token too" in later[0].result.error
    assert len(receiver.requests) == 2 + 3  # each later delivery once, with the token it holds


@pytest.mark.django_db(transaction=True)
def test_a_401_with_no_fresh_token_to_be_had_says_both(tenant, token_server, gateway):
    endpoint = _oauth2_endpoint(tenant, token_server, url=gateway.url())
    _send(_delivery(endpoint))
    token_server.revoke_all()
    token_server.error = Error(400, {"error": "invalid_client"})

    sent = _send(_delivery(endpoint, 2))

    assert sent.result.status_code == 401
    assert "no fresh one: Token endpoint 127.0.0.1 answered 400 invalid_client." in sent.result.error
    assert len(gateway.requests) == 2  # the first delivery, then the refused token once


@pytest.mark.django_db(transaction=True)
def test_no_token_no_request_and_a_clear_error_without_the_secret(tenant, receiver):
    down = TokenServer()  # never started: nothing listens on its port
    down.server.server_close()
    endpoint = _oauth2_endpoint(tenant, down, url=receiver.url())
    delivery = _delivery(endpoint)

    sent = _send(delivery)
    drain_due()

    assert sent.request_made is False and sent.result.status_code is None
    assert sent.result.error.startswith("Not sent: no OAuth2 token. Token request to 127.0.0.1 failed: Connection ")
    assert receiver.requests == []
    [attempt] = Attempt.objects.filter(delivery=delivery)
    assert attempt.request_made is False
    assert "no OAuth2 token" in attempt.error
    for stored in (sent.result.error, attempt.error, json.dumps(attempt.request_headers)):
        assert down.client_secret not in stored


@pytest.mark.django_db(transaction=True)
def test_a_refused_client_is_recorded_with_the_token_endpoints_answer(tenant, token_server, receiver):
    endpoint = _oauth2_endpoint(tenant, token_server, url=receiver.url(), client_secret="not-the-secret-77aa")
    delivery = _delivery(endpoint)

    drain_due()

    [attempt] = Attempt.objects.filter(delivery=delivery)
    assert attempt.request_made is False
    assert attempt.error == "Not sent: no OAuth2 token. Token endpoint 127.0.0.1 answered 401 invalid_client."
    assert receiver.requests == []
    assert "not-the-secret-77aa" not in json.dumps(attempt.request_headers)
