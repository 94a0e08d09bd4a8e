"""GET /metrics: Prometheus text, behind a Bearer token, with counters the publishing and recording code keep."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from subscriptions.services import disable_endpoint
from tests.factories import URL, TenantFactory, make_endpoint
from tests.support.receiver import Reply
from tests.support.sending import drain_due
from tests.web.dashboard.support import keyed_deliveries, published_ago
from webhookhub import publish

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789"


@pytest.fixture
def metrics_on(settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "METRICS_TOKEN": TOKEN}


def scrape(**headers) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one authorized scrape."""
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")  # the Prometheus text format
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_are_off_without_a_token(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/metrics")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"]
)
def test_metrics_refuse_a_request_without_the_token_and_read_nothing(
    metrics_on, authorization, django_assert_num_queries
):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    with django_assert_num_queries(0):
        response = Client().get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"webhookhub_" not in response.content


def test_metrics_take_no_writes(metrics_on):
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_publish_counters_count_events_and_their_deliveries_once(metrics_on, tenant):
    make_endpoint(tenant, URL)
    make_endpoint(tenant, URL)
    before = scrape()
    assert value(before, "webhookhub_events_published_total") == 0
    assert value(before, "webhookhub_deliveries_created_total") == 0

    for n in range(3):
        publish(tenant=tenant, type="message.received", data={"n": n}, idempotency_key=f"k{n}")
    publish(tenant=tenant, type="message.received", data={"n": 0}, idempotency_key="k0")  # a repeat: nothing new
    publish(tenant=tenant, type="message.received", data={}, endpoint_ids=[])  # to no endpoint

    after = scrape()
    assert value(after, "webhookhub_events_published_total") == 4
    assert value(after, "webhookhub_deliveries_created_total") == 6


def test_pending_deliveries_by_state_and_the_lag_of_the_oldest_due_one(metrics_on, tenant):
    endpoint = make_endpoint(tenant, URL).endpoint
    held = make_endpoint(tenant, URL).endpoint  # its circuit is open: waiting on purpose, not lag
    now = timezone.now()
    for _ in range(5):
        publish(tenant=tenant, type="message.received", data={}, endpoint_ids=[endpoint.pk, held.pk])
    mine = list(Delivery.objects.filter(endpoint=endpoint).order_by("pk"))
    Delivery.objects.filter(pk=mine[0].pk).update(next_attempt_at=now - timedelta(seconds=90))  # due, oldest
    Delivery.objects.filter(pk=mine[1].pk).update(next_attempt_at=now - timedelta(seconds=30))  # due
    Delivery.objects.filter(pk=mine[2].pk).update(lease_until=now + timedelta(seconds=30))  # a worker holds it
    Delivery.objects.filter(pk__in=[mine[3].pk, mine[4].pk]).update(next_attempt_at=now + timedelta(hours=1))
    Delivery.objects.filter(endpoint=held).update(next_attempt_at=now - timedelta(hours=3))
    EndpointSchedule.objects.create(endpoint=held, circuit_opened_at=now - timedelta(hours=3))

    samples = scrape()

    assert value(samples, "webhookhub_deliveries_pending", state="due") == 2 + 5
    assert value(samples, "webhookhub_deliveries_pending", state="in_flight") == 1
    assert value(samples, "webhookhub_deliveries_pending", state="scheduled") == 2
    assert 90 <= value(samples, "webhookhub_delivery_lag_seconds") < 150


def test_deliveries_waiting_behind_their_ordering_key_are_no_lag(metrics_on, tenant):
    endpoint = make_endpoint(tenant, URL, ordered=True).endpoint
    for n in range(3):
        publish(tenant=tenant, type="chat.updated", data={"n": n}, ordering_key="conv_1")
    head, *behind = Delivery.objects.filter(endpoint=endpoint).order_by("sequence")
    now = timezone.now()
    Delivery.objects.filter(pk=head.pk).update(next_attempt_at=now + timedelta(hours=1))  # retrying later
    Delivery.objects.filter(pk__in=[d.pk for d in behind]).update(next_attempt_at=now - timedelta(minutes=10))

    assert value(scrape(), "webhookhub_delivery_lag_seconds") == 0  # they wait on purpose, behind the head

    Delivery.objects.filter(pk=head.pk).update(status=DeliveryStatus.SUCCEEDED)
    assert 600 <= value(scrape(), "webhookhub_delivery_lag_seconds") < 660  # the next is free to go: it lags


def test_no_lag_when_nothing_waits(metrics_on, tenant):
    assert value(scrape(), "webhookhub_delivery_lag_seconds") == 0


def test_endpoints_by_state(metrics_on, tenant):
    now = timezone.now()
    sending = [make_endpoint(tenant, URL).endpoint for _ in range(3)]
    EndpointSchedule.objects.create(endpoint=sending[0], paused_until=now + timedelta(minutes=5))
    EndpointSchedule.objects.create(endpoint=sending[1], paused_until=now - timedelta(minutes=5))  # over
    EndpointSchedule.objects.create(endpoint=make_endpoint(tenant, URL).endpoint, circuit_opened_at=now)
    disable_endpoint(endpoint=make_endpoint(tenant, URL).endpoint, reason="test")

    samples = scrape()

    counts = {
        state: value(samples, "webhookhub_endpoints", state=state)
        for state in ("enabled", "paused", "circuit_open", "disabled")
    }
    assert counts == {"enabled": 2, "paused": 1, "circuit_open": 1, "disabled": 1}


def test_ordering_keys_blocked_counts_the_keys_held_back_longer_than_the_setting(metrics_on, settings, tenant):
    endpoint = make_endpoint(tenant, URL).endpoint
    assert value(scrape(), "webhookhub_ordering_keys_blocked") == 0

    published_ago(keyed_deliveries(endpoint, "conv_1", 3), timedelta(hours=2))  # blocked
    published_ago(keyed_deliveries(endpoint, "conv_alone", 1), timedelta(hours=2))  # nothing waits behind it
    published_ago(keyed_deliveries(endpoint, "conv_2", 2), timedelta(minutes=10))  # not for long yet
    one = scrape()
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ORDERING_BLOCKED_AFTER_SECONDS": 300}
    two = scrape()

    assert value(one, "webhookhub_ordering_keys_blocked") == 1
    assert value(two, "webhookhub_ordering_keys_blocked") == 2


def test_ordering_keys_blocked_has_help_and_type_lines(metrics_on):
    body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert "# HELP webhookhub_ordering_keys_blocked Ordering keys of ordered endpoints" in body
    assert "# TYPE webhookhub_ordering_keys_blocked gauge" in body


def test_ordering_keys_blocked_split_by_tenant_when_tenant_labels_are_on(metrics_on, settings, tenant):
    other = TenantFactory(slug="other-co")
    for owner, keys in ((tenant, ["conv_1"]), (other, ["conv_1", "conv_2"])):
        endpoint = make_endpoint(owner, URL).endpoint
        for key in keys:
            published_ago(keyed_deliveries(endpoint, key, 2), timedelta(hours=2))
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "METRICS_TENANT_LABELS": True}

    samples = scrape()

    assert value(samples, "webhookhub_ordering_keys_blocked", tenant=tenant.slug) == 1
    assert value(samples, "webhookhub_ordering_keys_blocked", tenant="other-co") == 2


def test_tenant_labels_are_off_by_default_and_split_every_metric_when_on(metrics_on, settings, tenant):
    other = TenantFactory(slug="other-co")
    make_endpoint(tenant, URL)
    make_endpoint(other, URL)
    publish(tenant=tenant, type="message.received", data={})
    publish(tenant=other, type="message.received", data={})
    publish(tenant=other, type="message.received", data={})
    assert all(dict(labels).get("tenant") is None for _, labels in scrape())

    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "METRICS_TENANT_LABELS": True}
    samples = scrape()

    assert value(samples, "webhookhub_events_published_total", tenant=tenant.slug) == 1
    assert value(samples, "webhookhub_events_published_total", tenant="other-co") == 2
    assert value(samples, "webhookhub_deliveries_pending", tenant="other-co", state="due") == 2
    assert value(samples, "webhookhub_endpoints", tenant=tenant.slug, state="enabled") == 1
    labelled = [dict(labels) for name, labels in samples if name.startswith("webhookhub_")]
    assert labelled and all("tenant" in labels for labels in labelled)


@pytest.mark.django_db(transaction=True)  # the worker records from its own thread
def test_attempt_counters_and_histogram_match_the_attempts_recorded(metrics_on, tenant, receiver):
    make_endpoint(tenant, receiver.url())
    receiver.replies = [Reply(status=500), Reply(status=200), Reply(status=200), Reply(status=410)]
    for n in range(3):
        publish(tenant=tenant, type="message.received", data={"n": n})
    drain_due()  # 500 (will retry), 200, 200
    Delivery.objects.filter(status=DeliveryStatus.PENDING).update(next_attempt_at=timezone.now())
    drain_due()  # the retry: 410 Gone fails for good

    samples = scrape()

    assert value(samples, "webhookhub_attempts_total", outcome="succeeded") == 2
    assert value(samples, "webhookhub_attempts_total", outcome="retrying") == 1
    assert value(samples, "webhookhub_attempts_total", outcome="failed") == 1
    assert value(samples, "webhookhub_attempt_duration_seconds_count") == 4
    assert value(samples, "webhookhub_attempt_duration_seconds_bucket", le="+Inf") == 4
    assert value(samples, "webhookhub_attempt_duration_seconds_bucket", le="15.0") == 4
    assert 0 < value(samples, "webhookhub_attempt_duration_seconds_sum") < 15 * 4


def test_a_short_metrics_token_is_refused_at_start(monkeypatch):
    from webhookhub import settings as project_settings

    monkeypatch.setenv("WEBHOOKHUB_METRICS_TOKEN", "short")
    with pytest.raises(ImproperlyConfigured, match="WEBHOOKHUB_METRICS_TOKEN must be at least 16 characters"):
        project_settings._metrics_token("WEBHOOKHUB_METRICS_TOKEN")


def _adaptive_endpoint(tenant, *, ceiling: int = 8, limit=None, limited_by: str = "", adaptive: bool = True):
    endpoint = make_endpoint(tenant, URL, max_in_flight=ceiling).endpoint
    if not adaptive:
        endpoint.adaptive_concurrency = False
        endpoint.save(update_fields=["adaptive_concurrency"])
    EndpointSchedule.objects.create(
        endpoint=endpoint, concurrency_limit=limit, concurrency_limited_by=limited_by, concurrency_limited_at=limit
    )
    return endpoint


def test_endpoints_held_below_their_ceiling_by_adaptive_concurrency_by_cause(metrics_on, tenant):
    _adaptive_endpoint(tenant, limit=3, limited_by="429")
    _adaptive_endpoint(tenant, limit=1, limited_by="429")
    _adaptive_endpoint(tenant, limit=2, limited_by="latency")
    _adaptive_endpoint(tenant, limit=8, limited_by="429")  # back at its ceiling: not held below it
    _adaptive_endpoint(tenant, limit=4)  # ramping up: nothing cut it
    _adaptive_endpoint(tenant, limit=None)  # not learnt yet
    _adaptive_endpoint(tenant, limit=2, limited_by="timeout", adaptive=False)  # a fixed limit: stale values
    disable_endpoint(endpoint=_adaptive_endpoint(tenant, limit=1, limited_by="refused"), reason="test")

    samples = scrape()

    counts = {
        cause: value(samples, "webhookhub_endpoints_concurrency_limited", limited_by=cause)
        for cause in ("429", "503", "timeout", "refused", "latency")
    }
    assert counts == {"429": 2, "503": 0, "timeout": 0, "refused": 0, "latency": 1}


def test_endpoints_concurrency_limited_has_help_and_type_lines(metrics_on):
    body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert "# HELP webhookhub_endpoints_concurrency_limited Enabled endpoints whose adaptive concurrency" in body
    assert "# TYPE webhookhub_endpoints_concurrency_limited gauge" in body
    assert 'webhookhub_endpoints_concurrency_limited{limited_by="429"} 0.0' in body


def test_endpoints_concurrency_limited_split_by_tenant_when_tenant_labels_are_on(metrics_on, settings, tenant):
    other = TenantFactory(slug="other-co")
    _adaptive_endpoint(tenant, limit=2, limited_by="503")
    _adaptive_endpoint(other, limit=2, limited_by="503")
    _adaptive_endpoint(other, limit=3, limited_by="503")
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "METRICS_TENANT_LABELS": True}

    samples = scrape()

    assert value(samples, "webhookhub_endpoints_concurrency_limited", tenant=tenant.slug, limited_by="503") == 1
    assert value(samples, "webhookhub_endpoints_concurrency_limited", tenant="other-co", limited_by="503") == 2
    assert value(samples, "webhookhub_endpoints_concurrency_limited", tenant="other-co", limited_by="429") == 0
