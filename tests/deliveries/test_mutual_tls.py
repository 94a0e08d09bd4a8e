"""Mutual TLS against a real HTTPS receiver on 127.0.0.1 that demands a client certificate from a CA made in the
test: through ``deliveries.http.post`` and through the worker (claim, send, record)."""

import json

import pytest

from deliveries import http
from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus
from subscriptions.certificates import ClientTls
from subscriptions.models import Endpoint
from tests.factories import make_endpoint
from tests.support.receiver import Receiver
from tests.support.sending import drain_due
from tests.support.tls import CertificateAuthority, Pair, server_context
from tests.support.tls_chains import ChainedAuthority
from webhookhub import publish

pytestmark = pytest.mark.usefixtures("loopback_receivers")


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture(scope="module")
def client_pair(ca) -> Pair:
    return ca.issue("hub client")


@pytest.fixture
def gateway(ca):
    """An HTTPS receiver with a server certificate of ``ca`` that demands a client certificate of ``ca``."""
    server = Receiver(tls=server_context(ca.issue("127.0.0.1", server=True), client_ca=ca.certificate)).start()
    yield server
    server.stop()


def _post(url: str, tls: ClientTls | None) -> http.HttpResult:
    return http.post(url, headers={}, body=b"{}", connect_timeout=2, total_timeout=5, max_response_bytes=1024, tls=tls)


def _key_lines(pair: Pair) -> list[str]:
    """The base64 lines of the private key: none may show anywhere."""
    return [line for line in pair.key.splitlines() if line and not line.startswith("-----")]


# --- deliveries.http.post ----------------------------------------------------------------------------------------


def test_with_the_pair_and_the_ca_the_receiver_takes_the_request(gateway, ca, client_pair):
    result = _post(gateway.url(), ClientTls(client_pair.certificate, client_pair.key, ca.certificate))

    assert (result.status_code, result.error) == (200, "")
    assert len(gateway.requests) == 1


def test_without_a_client_certificate_the_receiver_refuses(gateway, ca):
    result = _post(gateway.url(), ClientTls(ca_certificate=ca.certificate))

    assert result.status_code is None
    assert result.error.startswith("TLS handshake with 127.0.0.1 failed")
    assert "client certificate" in result.error
    assert gateway.requests == []


def test_a_client_certificate_from_another_ca_is_refused(gateway, ca):
    stranger = CertificateAuthority("another CA").issue("hub client")

    result = _post(gateway.url(), ClientTls(stranger.certificate, stranger.key, ca.certificate))

    assert result.status_code is None
    assert result.error.startswith("TLS handshake with 127.0.0.1 failed")
    assert gateway.requests == []


@pytest.mark.parametrize("with_pair", [True, False])
def test_without_the_endpoints_ca_the_test_ca_is_not_trusted(gateway, client_pair, with_pair):
    tls = ClientTls(client_pair.certificate, client_pair.key) if with_pair else None

    result = _post(gateway.url(), tls)

    assert result.status_code is None
    assert result.error.startswith("TLS certificate of 127.0.0.1 not trusted")
    assert gateway.requests == []


def test_tls_settings_openssl_no_longer_takes_are_a_failed_attempt_not_an_exception(gateway, ca):
    """Checked at save, but an upgraded OpenSSL may refuse what it took before (its security level)."""
    unusable = ClientTls("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "nope", ca.certificate)

    result = _post(gateway.url(), unusable)

    assert result.status_code is None
    assert result.error.startswith("Not sent: OpenSSL cannot use the endpoint's TLS settings:"), result.error
    assert "nope" not in result.error
    assert gateway.requests == []


def _post_to_a_server_named(name: str) -> tuple[http.HttpResult, list]:
    """POST to an HTTPS receiver whose certificate (from a CA the request trusts) names only ``name``."""
    chained = ChainedAuthority()
    receiver = Receiver(tls=server_context(chained.issue_server(name))).start()
    try:
        return _post(receiver.url(), ClientTls(ca_certificate=chained.root_certificate)), receiver.requests
    finally:
        receiver.stop()


def test_the_server_certificate_must_name_the_host_even_from_the_endpoints_ca():
    result, requests = _post_to_a_server_named("receiver.example")

    assert result.status_code is None
    assert "hostname '127.0.0.1' doesn't match 'receiver.example'" in result.error
    assert requests == []


def test_a_host_name_mismatch_is_not_blamed_on_mutual_tls():
    result, _ = _post_to_a_server_named("receiver.example")

    assert result.error.startswith("TLS certificate of 127.0.0.1 not trusted")
    assert "client certificate" not in result.error


def test_a_server_certificate_naming_the_host_only_in_its_common_name_is_not_trusted():
    """As without an endpoint CA (urllib3's own context): the name must be a subjectAltName."""
    chained = ChainedAuthority()
    receiver = Receiver(tls=server_context(chained.issue_server("localhost", alternative_names=False))).start()
    try:
        url = receiver.url().replace("127.0.0.1", "localhost")
        result = _post(url, ClientTls(ca_certificate=chained.root_certificate))
    finally:
        receiver.stop()

    assert result.status_code is None
    assert result.error.startswith("TLS certificate of localhost not trusted"), result.error
    assert receiver.requests == []


def test_a_client_certificate_under_an_intermediate_ca_is_sent_with_its_chain():
    chained = ChainedAuthority()
    server = chained.issue_server("127.0.0.1", "localhost")
    receiver = Receiver(tls=server_context(server, client_ca=chained.root_certificate)).start()
    client = chained.issue_client("hub client")
    try:
        result = _post(receiver.url(), ClientTls(client.certificate, client.key, chained.root_certificate))
    finally:
        receiver.stop()

    assert (result.status_code, result.error) == (200, "")
    assert len(receiver.requests) == 1


def test_kept_alive_connections_are_not_shared_between_tls_identities(gateway, ca, client_pair):
    with_pair = ClientTls(client_pair.certificate, client_pair.key, ca.certificate)
    assert _post(gateway.url(), with_pair).status_code == 200  # its connection stays open in its pool

    without = _post(gateway.url(), ClientTls(ca_certificate=ca.certificate))
    again = _post(gateway.url(), with_pair)

    assert without.status_code is None and "TLS handshake" in without.error
    assert again.status_code == 200
    assert len(gateway.requests) == 2


# --- through the worker ------------------------------------------------------------------------------------------


def _tls_endpoint(tenant, url: str, *, pair: Pair | None, ca_certificate: str = "") -> Endpoint:
    return make_endpoint(
        tenant,
        url,
        tls_client_certificate=pair.certificate if pair else "",
        tls_client_key=pair.key if pair else None,
        tls_ca_certificate=ca_certificate,
    ).endpoint


def _deliver_one(endpoint: Endpoint) -> Delivery:
    event = publish(tenant=endpoint.tenant, type="message.received", data={"n": 1}, endpoint_ids=[endpoint.pk])
    drain_due()
    return Delivery.objects.get(event=event, endpoint=endpoint)


def _stored(delivery: Delivery) -> str:
    """Everything recorded about the delivery's attempts, as text."""
    attempts = Attempt.objects.filter(delivery=delivery).values("request_headers", "error", "response_body")
    return json.dumps(list(attempts))


@pytest.mark.django_db(transaction=True)  # the worker records from its own connection
def test_an_endpoint_with_the_pair_gets_its_delivery(tenant, gateway, ca, client_pair):
    endpoint = _tls_endpoint(tenant, gateway.url(), pair=client_pair, ca_certificate=ca.certificate)

    delivery = _deliver_one(endpoint)

    assert delivery.status == DeliveryStatus.SUCCEEDED
    [attempt] = Attempt.objects.filter(delivery=delivery)
    assert (attempt.status_code, attempt.outcome) == (200, AttemptOutcome.SUCCESS)
    [request] = gateway.requests
    assert request.headers["webhook-id"] == delivery.event_id
    assert not any(line in _stored(delivery) for line in _key_lines(client_pair))


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_without_the_pair_fails_with_a_tls_error(tenant, gateway, ca):
    endpoint = _tls_endpoint(tenant, gateway.url(), pair=None, ca_certificate=ca.certificate)

    delivery = _deliver_one(endpoint)

    assert delivery.status == DeliveryStatus.PENDING  # retried later
    [attempt] = Attempt.objects.filter(delivery=delivery)
    assert attempt.status_code is None and attempt.outcome == AttemptOutcome.RETRY
    assert attempt.error.startswith("TLS handshake with 127.0.0.1 failed")
    assert gateway.requests == []


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_without_its_ca_does_not_trust_the_receiver(tenant, gateway, client_pair):
    endpoint = _tls_endpoint(tenant, gateway.url(), pair=client_pair)

    delivery = _deliver_one(endpoint)

    [attempt] = Attempt.objects.filter(delivery=delivery)
    assert attempt.status_code is None
    assert attempt.error.startswith("TLS certificate of 127.0.0.1 not trusted")
    assert gateway.requests == []
    assert not any(line in _stored(delivery) for line in _key_lines(client_pair))


@pytest.mark.django_db(transaction=True)
def test_two_endpoints_on_one_receiver_each_present_their_own_identity(tenant, gateway, ca, client_pair):
    with_pair = _tls_endpoint(tenant, gateway.url("/with"), pair=client_pair, ca_certificate=ca.certificate)
    without = _tls_endpoint(tenant, gateway.url("/without"), pair=None, ca_certificate=ca.certificate)
    event = publish(tenant=tenant, type="message.received", data={"n": 1})

    drain_due()

    outcomes = dict(Attempt.objects.filter(delivery__event=event).values_list("delivery__endpoint_id", "status_code"))
    assert outcomes == {with_pair.pk: 200, without.pk: None}
    assert [request.path for request in gateway.requests] == ["/with"]
