"""/api/v1/deliveries/ and the endpoint actions that touch deliveries: resend, replay, stats, test."""

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus, EndpointSchedule, Granularity
from deliveries.numbers.stats import Counts
from deliveries.numbers.tallying import bucket_start
from deliveries.numbers.windows import WINDOWS
from deliveries.services.actions import REPLAYABLE_STATUSES, replay
from events.models import Event, EventSource
from subscriptions.models import Endpoint
from tests.factories import endpoint_for, failed_delivery
from tests.support.db import db_state
from tests.support.numbers import record_stats
from tests.web.api.support import API, ids
from webhookhub import publish
from webhookhub.web.dashboard.queries import series

pytestmark = pytest.mark.django_db

DELIVERIES = API + "/deliveries/"


def _endpoint_path(endpoint, action: str) -> str:
    return f"{API}/endpoints/{endpoint.pk}/{action}/"


def _delivery(tenant, endpoint, *, type="message.received", status=DeliveryStatus.PENDING, age=timedelta(0)):
    event = publish(tenant=tenant, type=type, data={}, endpoint_ids=[endpoint.pk])
    delivery = Delivery.objects.get(event=event, endpoint=endpoint)
    done = status != DeliveryStatus.PENDING
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status,
        created_at=timezone.now() - age,
        next_attempt_at=None if done else delivery.next_attempt_at,
        completed_at=timezone.now() if done else None,
        attempt_count=1 if done else 0,
    )
    delivery.refresh_from_db()
    return delivery


def _attempt(delivery, number, *, outcome, duration_ms, status_code=200, age=timedelta(minutes=5), **fields):
    """An attempt in the log and in the rollups, as the recorder writes it."""
    attempt = Attempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=timezone.now() - age,
        duration_ms=duration_ms,
        status_code=status_code,
        outcome=outcome,
        **fields,
    )
    record_stats([attempt], now=timezone.now())
    return attempt


# --- list filters ------------------------------------------------------------------------------------


def test_list_filters_by_endpoint(admin, tenant):
    one, two = endpoint_for(tenant), endpoint_for(tenant)
    to_one, to_two = _delivery(tenant, one), _delivery(tenant, two)

    assert ids(admin.get(DELIVERIES, {"endpoint": one.pk})) == [to_one.pk]
    assert ids(admin.get(DELIVERIES, {"endpoint": two.pk})) == [to_two.pk]


def test_list_filters_by_event(admin, tenant):
    endpoint = endpoint_for(tenant)
    first, second = _delivery(tenant, endpoint), _delivery(tenant, endpoint)

    assert ids(admin.get(DELIVERIES, {"event": first.event_id})) == [first.pk]
    assert ids(admin.get(DELIVERIES, {"event": second.event_id})) == [second.pk]


def test_list_filters_by_event_type(admin, tenant):
    endpoint = endpoint_for(tenant)
    received = _delivery(tenant, endpoint, type="message.received")
    opened = _delivery(tenant, endpoint, type="chat.opened")

    assert ids(admin.get(DELIVERIES, {"event_type": "message.received"})) == [received.pk]
    assert ids(admin.get(DELIVERIES, {"event_type": "chat.opened"})) == [opened.pk]
    assert ids(admin.get(DELIVERIES, {"event_type": "chat.closed"})) == []


def test_list_filters_by_status(admin, tenant):
    endpoint = endpoint_for(tenant)
    pending = _delivery(tenant, endpoint)
    failed = _delivery(tenant, endpoint, status=DeliveryStatus.FAILED)
    succeeded = _delivery(tenant, endpoint, status=DeliveryStatus.SUCCEEDED)

    assert ids(admin.get(DELIVERIES, {"status": "pending"})) == [pending.pk]
    assert ids(admin.get(DELIVERIES, {"status": "failed"})) == [failed.pk]
    assert ids(admin.get(DELIVERIES, {"status": "succeeded"})) == [succeeded.pk]
    assert ids(admin.get(DELIVERIES, {"status": "cancelled"})) == []


def test_list_with_an_unknown_status_is_400(admin):
    response = admin.get(DELIVERIES, {"status": "lost"})

    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_list_filters_by_since_and_until_and_is_newest_first(admin, tenant):
    endpoint = endpoint_for(tenant)
    now = timezone.now()
    old = _delivery(tenant, endpoint, age=timedelta(days=2))
    recent = _delivery(tenant, endpoint, age=timedelta(hours=1))

    assert ids(admin.get(DELIVERIES)) == [recent.pk, old.pk]
    assert ids(admin.get(DELIVERIES, {"since": (now - timedelta(days=1)).isoformat()})) == [recent.pk]
    assert ids(admin.get(DELIVERIES, {"until": (now - timedelta(days=1)).isoformat()})) == [old.pk]
    window = {"since": (now - timedelta(days=3)).isoformat(), "until": (now - timedelta(hours=2)).isoformat()}
    assert ids(admin.get(DELIVERIES, window)) == [old.pk]


# --- read ---------------------------------------------------------------------------------------------


def test_read_includes_the_attempts_with_masked_headers(admin, tenant):
    delivery = failed_delivery(tenant)
    headers = {"webhook-id": delivery.event_id, "Authorization": "****0001", "X-Env": "****prod"}
    _attempt(
        delivery,
        2,
        outcome=AttemptOutcome.FAIL,
        duration_ms=80,
        status_code=500,
        request_headers=headers,
        response_body="boom",
        error="",
    )
    _attempt(
        delivery,
        1,
        outcome=AttemptOutcome.RETRY,
        duration_ms=5000,
        status_code=None,
        request_headers=headers,
        error="Read timed out.",
    )

    response = admin.get(f"{DELIVERIES}{delivery.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["event"], body["endpoint"], body["status"]) == (
        delivery.pk,
        delivery.event_id,
        delivery.endpoint_id,
        "failed",
    )
    assert body["event_type"] == "message.received"
    attempts = body["attempts"]
    assert [a["number"] for a in attempts] == [1, 2]
    assert [(a["outcome"], a["status_code"], a["duration_ms"]) for a in attempts] == [
        ("retry", None, 5000),
        ("fail", 500, 80),
    ]
    assert attempts[0]["error"] == "Read timed out." and attempts[1]["response_body"] == "boom"
    assert all(a["request_headers"] == headers for a in attempts)


def test_list_rows_do_not_include_attempts(admin, tenant):
    delivery = failed_delivery(tenant)
    _attempt(delivery, 1, outcome=AttemptOutcome.FAIL, duration_ms=10)

    row = admin.get(DELIVERIES).json()["results"][0]

    assert row["id"] == delivery.pk and "attempts" not in row


# --- resend -------------------------------------------------------------------------------------------


def test_resend_puts_a_failed_delivery_back_to_pending_now(admin, tenant):
    delivery = failed_delivery(tenant)
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(minutes=1))

    response = admin.post(f"{DELIVERIES}{delivery.pk}/resend/")

    assert response.status_code == 202
    assert response.json()["status"] == "pending" and response.json()["completed_at"] is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at <= timezone.now()
    assert (delivery.lease_until, delivery.completed_at) == (None, None)
    assert (delivery.event_id, delivery.attempt_count) == (delivery.event.pk, 8)  # same event, history kept
    assert Event.objects.count() == 1 and Delivery.objects.count() == 1


# --- replay -------------------------------------------------------------------------------------------


@pytest.fixture
def history(tenant):
    """An endpoint's deliveries from an hour ago (failed, succeeded, cancelled), a failed one from last week,
    and another endpoint's failed one."""
    endpoint = endpoint_for(tenant)
    hour = timedelta(hours=1)
    return {
        "endpoint": endpoint,
        "failed": _delivery(tenant, endpoint, status=DeliveryStatus.FAILED, age=hour),
        "failed_too": _delivery(tenant, endpoint, status=DeliveryStatus.FAILED, age=hour),
        "succeeded": _delivery(tenant, endpoint, status=DeliveryStatus.SUCCEEDED, age=hour),
        "cancelled": _delivery(tenant, endpoint, status=DeliveryStatus.CANCELLED, age=hour),
        "last_week": _delivery(tenant, endpoint, status=DeliveryStatus.FAILED, age=timedelta(days=7)),
        "elsewhere": _delivery(tenant, endpoint_for(tenant), status=DeliveryStatus.FAILED, age=hour),
    }


def _window(**extra):
    now = timezone.now()
    return {"since": (now - timedelta(days=1)).isoformat(), "until": now.isoformat(), **extra}


def _statuses(history) -> dict[str, str]:
    return {name: Delivery.objects.get(pk=row.pk).status for name, row in history.items() if name != "endpoint"}


def test_replay_dry_run_counts_and_changes_nothing(admin, history):
    before = db_state()

    response = admin.post(_endpoint_path(history["endpoint"], "replay"), _window(dry_run=True), format="json")

    assert response.status_code == 200
    assert response.json() == {"count": 2, "dry_run": True}
    assert db_state() == before


def test_replay_sends_the_failed_deliveries_in_the_window_again(admin, history):
    started = timezone.now()

    response = admin.post(_endpoint_path(history["endpoint"], "replay"), _window(), format="json")

    assert response.status_code == 200
    assert response.json() == {"count": 2, "dry_run": False}
    assert _statuses(history) == {
        "failed": "pending",
        "failed_too": "pending",
        "succeeded": "succeeded",
        "cancelled": "cancelled",
        "last_week": "failed",
        "elsewhere": "failed",
    }
    for name in ("failed", "failed_too"):
        row = Delivery.objects.get(pk=history[name].pk)
        assert started <= row.next_attempt_at <= timezone.now()
        assert (row.lease_until, row.completed_at) == (None, None)


def test_replay_of_chosen_statuses(admin, history):
    body = _window(status=["succeeded", "cancelled"])

    response = admin.post(_endpoint_path(history["endpoint"], "replay"), body, format="json")

    assert response.json() == {"count": 2, "dry_run": False}
    statuses = _statuses(history)
    assert (statuses["succeeded"], statuses["cancelled"]) == ("pending", "pending")
    assert (statuses["failed"], statuses["failed_too"]) == ("failed", "failed")


@pytest.mark.parametrize(
    "until_offset", [timedelta(0), -timedelta(hours=1)], ids=["until equals since", "until before"]
)
def test_replay_with_since_not_before_until_is_400(admin, history, until_offset):
    since = timezone.now() - timedelta(days=1)
    body = {"since": since.isoformat(), "until": (since + until_offset).isoformat()}
    before = db_state()

    response = admin.post(_endpoint_path(history["endpoint"], "replay"), body, format="json")

    assert response.status_code == 400
    assert "until" in response.json()["errors"]
    assert db_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [({"until": "2026-01-01T00:00:00Z"}, "since"), (_window(status=["pending"]), "status")],
    ids=["since missing", "pending is not replayable"],
)
def test_replay_with_bad_input_is_400(admin, history, body, field):
    before = db_state()

    response = admin.post(_endpoint_path(history["endpoint"], "replay"), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert db_state() == before


def test_replay_itself_refuses_a_status_that_is_not_replayable(history):
    """The rule is the domain's (the API and the dashboard offer only what it allows)."""
    before = db_state()
    now = timezone.now()

    with pytest.raises(ValidationError) as refused:
        replay(endpoint=history["endpoint"], statuses=["failed", "pending"], since=now - timedelta(days=1), until=now)

    assert list(refused.value.message_dict) == ["status"]
    assert db_state() == before
    assert set(REPLAYABLE_STATUSES) == {DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED, DeliveryStatus.CANCELLED}


# --- stats --------------------------------------------------------------------------------------------


def test_stats_counts_outcomes_success_rate_and_latency(admin, tenant):
    endpoint = endpoint_for(tenant)
    a = _delivery(tenant, endpoint, status=DeliveryStatus.SUCCEEDED)
    b = _delivery(tenant, endpoint, status=DeliveryStatus.FAILED)
    c = _delivery(tenant, endpoint)  # pending
    _attempt(a, 1, outcome=AttemptOutcome.SUCCESS, duration_ms=100)
    _attempt(a, 2, outcome=AttemptOutcome.SUCCESS, duration_ms=300)
    _attempt(b, 1, outcome=AttemptOutcome.RETRY, duration_ms=500, status_code=503)
    _attempt(b, 2, outcome=AttemptOutcome.RETRY, duration_ms=15000, status_code=None, error="timed out")
    _attempt(b, 3, outcome=AttemptOutcome.FAIL, duration_ms=400, status_code=410)
    _attempt(c, 1, outcome=AttemptOutcome.SUCCESS, duration_ms=200)
    _attempt(c, 2, outcome=AttemptOutcome.FAIL, duration_ms=9999, age=timedelta(days=2))  # outside the window
    other = _delivery(tenant, endpoint_for(tenant), status=DeliveryStatus.FAILED)
    _attempt(other, 1, outcome=AttemptOutcome.FAIL, duration_ms=7777)  # another endpoint

    before = timezone.now()
    response = admin.get(_endpoint_path(endpoint, "stats"))

    assert response.status_code == 200
    body = response.json()
    since = datetime.fromisoformat(body.pop("since"))
    # whole hourly buckets: from the start of the hour 24 hours ago
    assert since == bucket_start(since, Granularity.HOUR)
    assert before - timedelta(hours=25) < since <= before - timedelta(hours=24)
    assert body == {
        "window_seconds": 86400,
        "attempts": 6,
        "by_outcome": {"success": 3, "retry": 2, "fail": 1},
        "success_rate": 0.5,
        # Attempts that got a response: 100, 200, 300, 400, 500 ms (the timeout has no latency), in the
        # histogram's buckets (60, 100], (150, 250], (250, 400] twice, (400, 600]. The median, rank 2.5 of 5,
        # is a quarter into (250, 400]: 287.5; the 95th, rank 4.75, three quarters into (400, 600]: 550.
        "latency_p50_ms": 288,
        "latency_p95_ms": 550,
        "pending_deliveries": 1,
        "failed_deliveries": 1,
        "scheduling": {
            "leased": 0,
            "pending": 1,
            "max_in_flight": 8,
            "rate_limit_per_s": None,
            "paused_until": None,
            "pause_reason": "",
            "circuit_open_since": None,
            "next_probe_at": None,
            "consecutive_failures": 0,
            "adaptive_concurrency": True,
            "concurrency_limit": None,
            "concurrency_limited_by": "",
            "concurrency_limited_at": None,
            "concurrency": "starts at 2 at a time, up to 8",
            "summary": "0 being sent, 1 pending; starts at 2 at a time, up to 8",
        },
    }


def test_stats_window_1h_leaves_out_older_attempts(admin, tenant):
    endpoint = endpoint_for(tenant)
    delivery = _delivery(tenant, endpoint, status=DeliveryStatus.SUCCEEDED)
    _attempt(delivery, 1, outcome=AttemptOutcome.RETRY, duration_ms=900, status_code=500, age=timedelta(hours=2))
    _attempt(delivery, 2, outcome=AttemptOutcome.SUCCESS, duration_ms=50, age=timedelta(minutes=10))

    body = admin.get(_endpoint_path(endpoint, "stats"), {"window": "1h"}).json()

    assert (body["window_seconds"], body["attempts"], body["by_outcome"]) == (
        3600,
        1,
        {"success": 1, "retry": 0, "fail": 0},
    )
    # one response of 50 ms, in the bucket (40, 60]: a median half into it, the 95th 95 % into it
    assert (body["success_rate"], body["latency_p50_ms"], body["latency_p95_ms"]) == (1.0, 50, 59)


def test_stats_without_attempts_has_no_rate_or_latency(admin, tenant):
    body = admin.get(_endpoint_path(endpoint_for(tenant), "stats")).json()

    assert body["attempts"] == 0
    assert (body["success_rate"], body["latency_p50_ms"], body["latency_p95_ms"]) == (None, None, None)


def test_stats_with_an_unknown_window_is_400(admin, tenant):
    response = admin.get(_endpoint_path(endpoint_for(tenant), "stats"), {"window": "bad"})

    assert response.status_code == 400
    assert "window" in response.json()["errors"]


# --- test event ---------------------------------------------------------------------------------------


def test_test_event_goes_to_that_endpoint_only(admin, tenant):
    target = endpoint_for(tenant, event_types=["message.received"])
    endpoint_for(tenant, event_types=["*"])  # would get a normal webhook.test event; not this one

    response = admin.post(_endpoint_path(target, "test"), {}, format="json")

    assert response.status_code == 202, response.content
    event = Event.objects.get()
    assert (event.event_type_id, event.source, event.tenant) == ("webhook.test", EventSource.TEST, tenant)
    assert event.data["message"] == "This is a test event from webhookhub."
    delivery = Delivery.objects.get()
    assert (delivery.event, delivery.endpoint_id, delivery.status) == (event, target.pk, DeliveryStatus.PENDING)
    body = response.json()
    assert (body["id"], body["event"], body["endpoint"], body["event_type"]) == (
        delivery.pk,
        event.pk,
        target.pk,
        "webhook.test",
    )


def test_test_event_with_custom_data(admin, tenant):
    target = endpoint_for(tenant)

    response = admin.post(_endpoint_path(target, "test"), {"data": {"hello": "world"}}, format="json")

    assert response.status_code == 202
    assert Event.objects.get().data == {"hello": "world"}


def test_test_event_with_data_not_an_object_is_400(admin, tenant):
    target = endpoint_for(tenant)
    before = db_state()

    response = admin.post(_endpoint_path(target, "test"), {"data": [1]}, format="json")

    assert response.status_code == 400
    assert "data" in response.json()["errors"]
    assert db_state() == before


def test_an_endpoint_shows_its_scheduling_state(admin, tenant):
    endpoint = endpoint_for(tenant)
    Endpoint.objects.filter(pk=endpoint.pk).update(rate_limit_per_s=5, max_in_flight=3)
    leased = _delivery(tenant, endpoint)
    Delivery.objects.filter(pk=leased.pk).update(lease_until=timezone.now() + timedelta(seconds=30))
    _delivery(tenant, endpoint)
    opened = timezone.now() - timedelta(minutes=2)
    EndpointSchedule.objects.create(
        endpoint=endpoint, down_in_a_row=7, circuit_opened_at=opened, next_probe_at=opened + timedelta(minutes=3)
    )

    body = admin.get(f"/api/v1/endpoints/{endpoint.pk}/").json()

    scheduling = body["scheduling"]
    assert (scheduling["leased"], scheduling["pending"], scheduling["max_in_flight"]) == (1, 2, 3)
    assert scheduling["rate_limit_per_s"] == 5 and body["max_in_flight"] == 3
    assert scheduling["consecutive_failures"] == 7
    assert scheduling["circuit_open_since"] is not None and scheduling["next_probe_at"] is not None


@pytest.mark.parametrize("window", ["1h", "24h", "7d"])
def test_stats_agree_with_the_dashboards_endpoint_page(admin, tenant, window):
    endpoint = endpoint_for(tenant)
    delivery = _delivery(tenant, endpoint)
    for number, (ms, age) in enumerate([(30, 5), (700, 20), (2200, 50), (90, 70), (12, 200), (5000, 3000)], start=1):
        outcome = AttemptOutcome.SUCCESS if number % 2 else AttemptOutcome.RETRY
        _attempt(delivery, number, outcome=outcome, duration_ms=ms, age=timedelta(minutes=age))

    body = admin.get(_endpoint_path(endpoint, "stats"), {"window": window}).json()

    bars = series([tenant.pk], WINDOWS[window], timezone.now(), endpoint_id=endpoint.pk)
    shown = Counts()
    for bar in bars:
        shown.merge(bar.counts)
    assert body["attempts"] == shown.attempts > 0
    assert (body["latency_p50_ms"], body["latency_p95_ms"]) == (shown.percentile(0.5), shown.percentile(0.95))
    assert body["success_rate"] == round(shown.success_rate, 4)
