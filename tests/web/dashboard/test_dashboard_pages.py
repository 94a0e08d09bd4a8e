"""The overview, delivery and endpoint pages: numbers from recorded attempts, and the actions admins take."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from deliveries.numbers.tallying import bucket_start
from events.models import Event, EventSource, EventType
from subscriptions.models import Endpoint
from subscriptions.services import ADMIN_DISABLED_REASON, disable_endpoint
from tests.factories import delivery_to, endpoint_for
from tests.support.db import delivery_state
from tests.support.recording import record
from tests.support.write_only import HEADER_VALUE, TOKEN
from tests.web.dashboard.support import (
    FORM_TIME,
    deliveries_to,
    hidden_fields,
    keyed_deliveries,
    kpi,
    labelled_kpi,
    listed,
    messages_shown,
    page,
    published_ago,
    section,
    url,
)

pytestmark = pytest.mark.django_db


# --- overview --------------------------------------------------------------------------------------------


def test_the_overview_counts_the_attempts_recorded_in_the_window(endpoint, tenant_admin):
    record(deliveries_to(endpoint, 3))
    record(deliveries_to(endpoint, 2), status=500)
    record(deliveries_to(endpoint, 1), status=500, final=True)

    response = tenant_admin.get(url("overview"))

    figures = {name: kpi(response, f"kpi-{name}") for name in ("attempts", "succeeded", "retried", "failed")}
    assert figures == {"attempts": "6", "succeeded": "3", "retried": "2", "failed": "1"}
    assert kpi(response, "kpi-success-rate") == "50.0%"  # 3 succeeded, of them, 1 failed for good and 2 retrying
    assert kpi(response, "kpi-first-attempt-success") == "50.0%"  # 3 of 6 first attempts
    assert kpi(response, "kpi-pending") == "2"


def test_a_superuser_overview_counts_every_tenant_until_one_is_picked(tenant, other_tenant, endpoint, superuser):
    record(deliveries_to(endpoint, 2))
    record(deliveries_to(endpoint_for(other_tenant), 3), status=500)

    everyone = superuser.get(url("overview"))
    picked = superuser.get(url("overview", tenant=other_tenant.pk))

    assert (kpi(everyone, "kpi-attempts"), kpi(everyone, "kpi-pending")) == ("5", "3")
    assert (kpi(picked, "kpi-attempts"), kpi(picked, "kpi-succeeded"), kpi(picked, "kpi-pending")) == ("3", "0", "3")


def test_a_retried_delivery_counts_every_attempt(endpoint, tenant_admin):
    delivery = delivery_to(endpoint)
    record([delivery], status=503)
    record([delivery], status=None, error="Connection refused")
    record([delivery])

    response = tenant_admin.get(url("overview"))

    assert (kpi(response, "kpi-attempts"), kpi(response, "kpi-retried"), kpi(response, "kpi-succeeded")) == (
        "3",
        "2",
        "1",
    )
    assert kpi(response, "kpi-pending") == "0"


AGES = [timedelta(minutes=50), timedelta(hours=3), timedelta(days=2), timedelta(days=10), timedelta(days=40)]


@pytest.mark.parametrize(("window", "expected"), [("1h", 1), ("24h", 2), ("7d", 3), ("30d", 4)])
def test_a_window_counts_only_the_attempts_made_within_it(endpoint, tenant_admin, window, expected):
    now = timezone.now()
    for age in AGES:
        record([delivery_to(endpoint)], at=now - age)

    response = tenant_admin.get(url("overview", window=window))

    assert kpi(response, "kpi-attempts") == str(expected)
    assert re.search(rf'class="current" id="window-{window}"', response.content.decode())


def test_the_overview_shows_the_last_24_hours_by_default(endpoint, tenant_admin):
    now = timezone.now()
    for age in AGES:
        record([delivery_to(endpoint)], at=now - age)

    response = tenant_admin.get(url("overview"))

    assert kpi(response, "kpi-attempts") == "2"
    assert 'class="current" id="window-24h"' in response.content.decode()


def test_an_unknown_window_falls_back_to_24_hours_with_a_message(endpoint, tenant_admin):
    now = timezone.now()
    for age in AGES:
        record([delivery_to(endpoint)], at=now - age)

    response = tenant_admin.get(url("overview", window="1y"))

    assert response.status_code == 200
    assert messages_shown(response) == ["Unknown window '1y': showing 24 hours."]
    assert kpi(response, "kpi-attempts") == "2"
    assert 'class="current" id="window-24h"' in response.content.decode()


def _health_order(response) -> list[str]:
    return re.findall(r'<a href="/dashboard/endpoints/[^"]*">([^<]+)</a>', section(response, "endpoint-health"))


def test_the_health_table_lists_endpoints_worst_first(tenant, tenant_admin):
    ep = {
        name: endpoint_for(tenant, name=name)
        for name in ("idle", "all good", "half good", "failing once", "failing twice", "disabled but fine")
    }
    record([delivery_to(ep["all good"])])
    record([delivery_to(ep["half good"])])
    record([delivery_to(ep["half good"])], status=500)
    record([delivery_to(ep["failing once"])], status=500)
    record(deliveries_to(ep["failing twice"], 2), status=500)
    record([delivery_to(ep["disabled but fine"])])
    disable_endpoint(endpoint=ep["disabled but fine"], reason="Disabled by an admin.", notify=False)

    response = tenant_admin.get(url("overview"))

    assert _health_order(response) == [
        "disabled but fine",  # disabled first
        "failing twice",  # 0%, two failures in a row
        "failing once",  # 0%, one failure in a row
        "half good",  # 50%
        "all good",  # 100%
        "idle",  # no attempts in the window
    ]


def test_the_health_table_shows_each_endpoints_last_status_error_and_streak(endpoint, tenant_admin):
    record([delivery_to(endpoint)])
    record(deliveries_to(endpoint, 2), status=502, body=b"bad gateway")

    row = section(tenant_admin.get(url("overview")), "endpoint-health")

    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells[:2] == ["33.3%", "3"]  # success rate, attempts
    assert "502" in row
    assert "HTTP 502" in row
    assert '<td class="num">2</td>' in row  # failures in a row


def test_the_overview_shows_latency_percentiles_of_the_recorded_responses(endpoint, tenant_admin):
    record(deliveries_to(endpoint, 10), duration_ms=8)  # the 5-10 ms bucket
    record(deliveries_to(endpoint, 10), duration_ms=3000)  # the 2500-4000 ms bucket
    record(deliveries_to(endpoint, 5), status=None, duration_ms=30000, error="timed out")  # no response: no latency

    response = tenant_admin.get(url("overview"))

    assert labelled_kpi(response, "p50 latency (ms)") == "10"
    assert labelled_kpi(response, "p95 latency (ms)") == "3850"
    assert labelled_kpi(response, "p99 latency (ms)") == "3970"
    assert "3850 ms" in section(response, "endpoint-health")


def test_the_overview_without_attempts_shows_no_latency(endpoint, tenant_admin):
    response = tenant_admin.get(url("overview"))

    assert labelled_kpi(response, "p50 latency (ms)") == "–"
    assert kpi(response, "kpi-success-rate") == "–"


@pytest.mark.parametrize(
    ("window", "age", "step"),
    [
        ("1h", timedelta(minutes=20), 300),
        ("24h", timedelta(hours=5), 3600),
        ("7d", timedelta(days=2), 4 * 3600),
        ("30d", timedelta(days=10), 24 * 3600),
    ],
)
def test_the_outcome_chart_has_a_bar_for_the_step_of_the_attempts(endpoint, tenant_admin, window, age, step):
    at = timezone.now() - age
    record(deliveries_to(endpoint, 3), at=at)
    record(deliveries_to(endpoint, 2), status=500, at=at)
    record(deliveries_to(endpoint, 1), status=500, final=True, at=at)

    html = tenant_admin.get(url("overview", window=window)).content.decode()

    bar = f"{bucket_start(at, step):%m-%d %H:%M}: 3 succeeded, 2 retried, 1 failed"
    assert html.count(f"<title>{bar}</title>") == 3  # one per coloured part of the bar
    assert len(re.findall(r"<title>[^<]*: \d+ succeeded", html)) == 3  # no other bar


def test_the_failed_figure_links_to_the_failed_deliveries(endpoint, tenant_admin):
    failed = delivery_to(endpoint)
    record([failed], status=500, final=True)
    record([delivery_to(endpoint)])
    overview = tenant_admin.get(url("overview"))

    href = re.search(r'id="kpi-failed"><a href="([^"]+)"', overview.content.decode()).group(1)
    log = tenant_admin.get(href)

    assert kpi(overview, "kpi-failed") == "1"
    assert listed(log) == [failed.pk]


def test_names_bodies_and_errors_are_shown_as_text_not_markup(tenant, tenant_admin):
    endpoint = endpoint_for(tenant, name="<script>alert('name')</script>")
    delivery = delivery_to(endpoint, data={"note": "<img src=x onerror=alert(1)>"})
    record([delivery], status=500, body=b"<script>alert('body')</script>")

    pages = [
        tenant_admin.get(url(name, *args)).content.decode()
        for name, args in [
            ("overview", ()),
            ("deliveries", ()),
            ("delivery", (delivery.pk,)),
            ("endpoint", (endpoint.pk,)),
        ]
    ]

    for html in pages:
        assert "<script>alert(" not in html
        assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;body&#x27;)&lt;/script&gt;" in pages[2]


# --- delivery detail -------------------------------------------------------------------------------------


@pytest.fixture
def secret_endpoint(tenant):
    return endpoint_for(
        tenant, name="secured", auth_type="bearer", auth={"token": TOKEN}, custom_headers={"X-Api-Key": HEADER_VALUE}
    )


def test_the_delivery_page_shows_the_envelope_as_sent(endpoint, tenant_admin):
    delivery = delivery_to(endpoint, data={"order": "A-1001"})

    response = tenant_admin.get(url("delivery", delivery.pk))

    envelope = re.search(r'<pre id="envelope">(.*?)</pre>', page(response), re.S).group(1)
    assert envelope == Event.objects.get(pk=delivery.event_id).body
    assert "A-1001" in envelope


def test_the_delivery_page_shows_every_attempt_with_masked_headers_response_and_error(secret_endpoint, tenant_admin):
    delivery = delivery_to(secret_endpoint)
    record([delivery], status=500, body=b"upstream exploded", headers={"X-Trace": "trace-77"})
    record([delivery], status=None, error="Connection refused by 93.184.216.34")

    html = page(tenant_admin.get(url("delivery", delivery.pk)))

    first = html[html.index('id="attempt-1"') :]
    second = html[html.index('id="attempt-2"') : html.index('id="attempt-1"')]
    assert "Attempt 1" in first and '<span class="attempt-status">500</span>' in first
    assert "upstream exploded" in first and "X-Trace: trace-77" in first and "HTTP 500" in first
    assert "Attempt 2" in second and '<span class="attempt-status">no response</span>' in second
    assert "Error:</strong> Connection refused by 93.184.216.34" in second
    for attempt in (first, second):
        assert "Authorization: Bearer ****0001" in attempt
        assert "X-Api-Key: ****0004" in attempt
        assert f"webhook-id: {delivery.event_id}" in attempt
    assert TOKEN not in html
    assert HEADER_VALUE not in html


def test_the_delivery_page_shows_when_the_next_retry_is_due(endpoint, tenant_admin):
    delivery = delivery_to(endpoint)
    record([delivery], status=500)
    delivery.refresh_from_db()

    html = page(tenant_admin.get(url("delivery", delivery.pk)))

    assert f'id="next-attempt">{delivery.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC<' in html
    assert '<dd id="attempt-count">1</dd>' in html


def test_a_finished_delivery_shows_no_next_attempt_and_no_cancel_button(endpoint, tenant_admin):
    delivery = delivery_to(endpoint)
    record([delivery])

    html = page(tenant_admin.get(url("delivery", delivery.pk)))

    assert 'id="next-attempt">none<' in html
    assert 'id="cancel"' not in html
    assert 'id="resend"' in html


def test_a_delivery_due_now_refreshes_its_page_until_the_attempt_shows(endpoint, tenant_admin):
    due = delivery_to(endpoint)
    waiting = delivery_to(endpoint, next_attempt_at=timezone.now() + timedelta(minutes=5))

    due_page = page(tenant_admin.get(url("delivery", due.pk)))
    waiting_page = page(tenant_admin.get(url("delivery", waiting.pk)))

    assert '<meta http-equiv="refresh"' in due_page
    assert "No attempt yet: a worker is on it, this page refreshes by itself." in due_page
    assert '<meta http-equiv="refresh"' not in waiting_page


def test_the_delivery_page_links_to_its_admin_change_page(endpoint, tenant_admin):
    delivery = delivery_to(endpoint)
    admin_link = reverse("admin:deliveries_delivery_change", args=[delivery.pk])

    html = tenant_admin.get(url("delivery", delivery.pk)).content.decode()

    assert f'href="{admin_link}"' in html
    assert tenant_admin.get(admin_link).status_code == 200


# --- resend and cancel -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        {"status": DeliveryStatus.FAILED, "next_attempt_at": None},
        {"status": DeliveryStatus.SUCCEEDED, "next_attempt_at": None},
        {"status": DeliveryStatus.CANCELLED, "next_attempt_at": None},
        {"status": DeliveryStatus.PENDING, "next_attempt_at": "later"},
        {"status": DeliveryStatus.PENDING, "lease_until": "expired", "next_attempt_at": "later"},
    ],
    ids=["failed", "succeeded", "cancelled", "pending-waiting-for-a-retry", "pending-lease-expired"],
)
def test_resend_makes_the_delivery_due_now(endpoint, tenant_admin, state):
    now = timezone.now()
    moments = {"expired": now - timedelta(minutes=1), "later": now + timedelta(hours=2)}
    state = {key: moments.get(value, value) if isinstance(value, str) else value for key, value in state.items()}
    finished = state["status"] != DeliveryStatus.PENDING
    delivery = delivery_to(endpoint, attempt_count=3, completed_at=now if finished else None, **state)

    response = tenant_admin.post(url("delivery_resend", delivery.pk), follow=True)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at <= timezone.now()
    assert (delivery.lease_until, delivery.completed_at, delivery.attempt_count) == (None, None, 3)
    assert response.redirect_chain == [(url("delivery", delivery.pk), 302)]
    assert messages_shown(response) == ["The delivery will be sent again now."]


def test_resend_leaves_an_in_flight_delivery_to_its_worker(endpoint, tenant_admin):
    lease = timezone.now() + timedelta(seconds=90)
    delivery = delivery_to(endpoint, attempt_count=1, lease_until=lease)
    before = delivery_state(delivery)

    response = tenant_admin.post(url("delivery_resend", delivery.pk), follow=True)

    assert delivery_state(delivery) == before
    assert messages_shown(response) == ["A worker is sending this delivery right now; it was left to finish."]


def test_cancel_cancels_a_pending_delivery(endpoint, tenant_admin):
    delivery = delivery_to(endpoint, attempt_count=1, next_attempt_at=timezone.now() + timedelta(minutes=5))

    response = tenant_admin.post(url("delivery_cancel", delivery.pk), follow=True)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == (DeliveryStatus.CANCELLED, None)
    assert delivery.completed_at is not None
    assert messages_shown(response) == ["Cancelled: no further attempts will be made."]
    assert 'id="cancel"' not in page(response)
    assert 'id="next-attempt">none<' in page(response)


def test_cancel_refuses_an_in_flight_delivery_with_a_message(endpoint, tenant_admin):
    delivery = delivery_to(endpoint, attempt_count=1, lease_until=timezone.now() + timedelta(seconds=90))
    before = delivery_state(delivery)

    response = tenant_admin.post(url("delivery_cancel", delivery.pk), follow=True)

    assert delivery_state(delivery) == before
    assert messages_shown(response) == [
        "Not cancelled: the delivery is not pending, or a worker is sending it right now."
    ]


def test_cancel_refuses_a_delivery_that_is_no_longer_pending(endpoint, tenant_admin):
    delivery = delivery_to(endpoint)
    record([delivery])
    before = delivery_state(delivery)

    response = tenant_admin.post(url("delivery_cancel", delivery.pk), follow=True)

    assert delivery_state(delivery) == before
    assert before[0] == DeliveryStatus.SUCCEEDED
    assert messages_shown(response) == [
        "Not cancelled: the delivery is not pending, or a worker is sending it right now."
    ]


def test_a_waiting_keyed_delivery_links_the_delivery_it_waits_behind(endpoint, tenant_admin):
    first, second = keyed_deliveries(endpoint, "conv_1", 2)

    waiting = page(tenant_admin.get(url("delivery", second.pk)))
    head = page(tenant_admin.get(url("delivery", first.pk)))

    behind = re.search(r'<dd id="waiting-behind">Waiting behind <a href="([^"]+)">delivery #(\d+)</a>', waiting)
    assert behind and behind.groups() == (url("delivery", first.pk), str(first.pk))
    assert tenant_admin.get(behind.group(1)).status_code == 200
    assert re.search(r'id="ordering-key"><a [^>]*>conv_1</a> <span class="muted">\(number 2 of this key\)', waiting)
    assert re.search(r'id="ordering-key"><a [^>]*>conv_1</a> <span class="muted">\(number 1 of this key\)', head)
    assert "Waiting behind" not in head


def test_a_keyed_delivery_waits_no_more_once_the_one_before_it_succeeded(endpoint, tenant_admin):
    first, second = keyed_deliveries(endpoint, "conv_1", 2)
    Delivery.objects.filter(pk=first.pk).update(
        status=DeliveryStatus.SUCCEEDED, next_attempt_at=None, completed_at=timezone.now()
    )

    html = page(tenant_admin.get(url("delivery", second.pk)))

    assert "Waiting behind" not in html
    assert 'id="ordering-key"' in html


def test_the_key_of_a_delivery_links_to_the_log_of_that_key(endpoint, tenant, tenant_admin):
    first, second = keyed_deliveries(endpoint, "conv 1&2", 2)
    keyed_deliveries(endpoint, "conv_2", 1)
    keyed_deliveries(endpoint_for(tenant, name="billing"), "conv 1&2", 1)  # same key, another endpoint

    html = page(tenant_admin.get(url("delivery", first.pk)))

    log_link = re.search(r'id="ordering-key"><a href="([^"]+)"', html).group(1)
    assert listed(tenant_admin.get(log_link)) == [second.pk, first.pk]


def test_a_delivery_without_a_key_shows_no_ordering(endpoint, tenant_admin):
    html = page(tenant_admin.get(url("delivery", delivery_to(endpoint).pk)))

    assert 'id="ordering-key"' not in html and "Waiting behind" not in html


# --- blocked ordering keys -------------------------------------------------------------------------------


def test_the_overview_lists_keys_blocked_longer_than_the_setting_with_a_link_to_their_log(endpoint, tenant_admin):
    stuck = keyed_deliveries(endpoint, "conv_1", 3)
    published_ago(stuck, timedelta(hours=2))
    published_ago(keyed_deliveries(endpoint, "conv_alone", 1), timedelta(hours=2))  # nothing behind it
    keyed_deliveries(endpoint, "conv_recent", 2)  # waiting, but not for long yet

    response = tenant_admin.get(url("overview"))

    table = section(response, "blocked-keys")
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    assert len(rows) == 1
    assert "orders" in rows[0] and re.search(r'<td class="num">3</td>', rows[0])
    since = Delivery.objects.get(pk=stuck[0].pk).created_at
    assert f"{since:%Y-%m-%d %H:%M}" in rows[0]
    key_link = re.search(r'<a href="([^"]+)" class="blocked-key">conv_1</a>', page(response)).group(1)
    assert listed(tenant_admin.get(key_link)) == sorted((d.pk for d in stuck), reverse=True)


def test_the_overview_shows_no_blocked_keys_when_none_waited_that_long(endpoint, tenant_admin, settings):
    published_ago(keyed_deliveries(endpoint, "conv_1", 2), timedelta(minutes=30))

    before = tenant_admin.get(url("overview"))
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ORDERING_BLOCKED_AFTER_SECONDS": 600}
    after = tenant_admin.get(url("overview"))

    assert 'id="blocked-keys"' not in before.content.decode()
    assert 'class="blocked-key">conv_1</a>' in section(after, "blocked-keys")
    assert "waited more than 10\xa0minutes" in page(after)


# --- endpoint page ---------------------------------------------------------------------------------------


def test_the_endpoint_page_counts_its_own_attempts_and_shows_its_streak(tenant, endpoint, tenant_admin):
    record([delivery_to(endpoint)], duration_ms=8)
    record(deliveries_to(endpoint, 3), status=500, duration_ms=8)
    record(deliveries_to(endpoint_for(tenant, name="billing"), 4))

    response = tenant_admin.get(url("endpoint", endpoint.pk))

    assert labelled_kpi(response, "attempts") == "4"
    assert labelled_kpi(response, "deliveries succeeded") == "100%"  # the one that finished succeeded
    assert labelled_kpi(response, "succeeded on the first try") == "25.0%"  # 3 of 4 first attempts failed
    assert labelled_kpi(response, "failed in a row") == "3"
    assert "Last error:</strong> HTTP 500" in page(response)
    failures = section(response, "recent-failures")
    assert len(re.findall(r'href="/dashboard/deliveries/\d+/"', failures)) == 3


def test_the_endpoint_page_shows_its_scheduling(endpoint, tenant_admin):
    Endpoint.objects.filter(pk=endpoint.pk).update(rate_limit_per_s=5, max_in_flight=4)
    deliveries_to(endpoint, 3)
    paused_until = timezone.now() + timedelta(minutes=1)
    reason = "Retry-After from the endpoint"
    EndpointSchedule.objects.create(
        endpoint=endpoint,
        paused_until=paused_until,
        pause_reason=reason,
        concurrency_limit=2,
        concurrency_limited_by="429",
        concurrency_limited_at=3,
    )

    panel = section(tenant_admin.get(url("endpoint", endpoint.pk)), "scheduling")

    assert "paused" in panel and "Retry-After from the endpoint" in panel
    assert re.search(r'id="leased">0 \(at most 4 requests open at once\)<', panel)
    assert re.search(r'id="concurrency">sending 2 at a time, limited by: 429s at 3<', panel)
    assert re.search(r'id="pending">3<', panel)
    assert re.search(r'id="rate-limit">5 requests/s<', panel)


def test_the_endpoint_page_shows_whether_delivery_is_ordered(endpoint, tenant_admin):
    unordered = section(tenant_admin.get(url("endpoint", endpoint.pk)), "scheduling")
    Endpoint.objects.filter(pk=endpoint.pk).update(ordered=True)
    ordered = section(tenant_admin.get(url("endpoint", endpoint.pk)), "scheduling")

    assert re.search(r'id="ordered">off: ', unordered)
    assert re.search(r'id="ordered">on: events with the same ordering key are sent one at a time', ordered)


def test_the_endpoint_page_lists_its_own_blocked_keys_only(tenant, endpoint, tenant_admin):
    published_ago(keyed_deliveries(endpoint, "conv_1", 2), timedelta(hours=3))
    published_ago(keyed_deliveries(endpoint_for(tenant, name="billing"), "conv_billing", 2), timedelta(hours=3))

    own = section(tenant_admin.get(url("endpoint", endpoint.pk)), "blocked-keys")

    assert 'class="blocked-key">conv_1</a>' in own
    assert "conv_billing" not in own


def test_sending_a_test_event_publishes_to_that_endpoint_only_and_opens_its_delivery(tenant, endpoint, tenant_admin):
    other = endpoint_for(tenant, name="billing")

    response = tenant_admin.post(url("endpoint_test", endpoint.pk), follow=True)

    event = Event.objects.get()
    delivery = Delivery.objects.get()
    assert (event.event_type_id, event.source) == ("webhook.test", EventSource.TEST)
    assert (delivery.event_id, delivery.endpoint_id) == (event.pk, endpoint.pk)
    assert not Delivery.objects.filter(endpoint=other).exists()
    assert response.redirect_chain == [(url("delivery", delivery.pk), 302)]
    assert messages_shown(response) == ["Test event sent: this page shows the attempt when the worker has made it."]
    assert "webhook.test" in page(response)


def test_a_test_event_that_cannot_be_published_says_why_and_stays_on_the_endpoint(endpoint, tenant_admin):
    EventType.objects.filter(name="webhook.test").update(archived=True)

    response = tenant_admin.post(url("endpoint_test", endpoint.pk), follow=True)

    assert response.redirect_chain == [(url("endpoint", endpoint.pk), 302)]
    assert messages_shown(response) == [
        "No test event sent: Unknown event type 'webhook.test'; see the event-type catalog."
    ]
    assert not Event.objects.exists()


def test_disabling_an_endpoint_from_its_page(endpoint, tenant_admin):
    response = tenant_admin.post(url("endpoint_toggle", endpoint.pk), {"enabled": "0"}, follow=True)

    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, ADMIN_DISABLED_REASON)
    assert messages_shown(response) == ["Endpoint disabled: new events are no longer sent to it."]
    assert 'id="enable"' in page(response)


def test_enabling_an_endpoint_from_its_page(endpoint, tenant_admin):
    disable_endpoint(endpoint=endpoint, reason=ADMIN_DISABLED_REASON, notify=False)

    # Forced: nothing listens at the endpoint's URL (the test event first: test_enable_from_dashboard.py).
    response = tenant_admin.post(url("endpoint_toggle", endpoint.pk), {"enabled": "1", "force": "1"}, follow=True)

    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at) == (True, "", None)
    assert messages_shown(response) == ["Endpoint enabled: without a test (forced)."]
    assert 'id="disable"' in page(response)


def test_a_toggle_without_a_choice_changes_nothing_and_says_so(endpoint, tenant_admin):
    response = tenant_admin.post(url("endpoint_toggle", endpoint.pk), {"enabled": "yes"}, follow=True)

    assert Endpoint.objects.get(pk=endpoint.pk).enabled is True
    assert messages_shown(response) == ["Say whether to enable (1) or disable (0) the endpoint."]


def test_the_endpoint_page_falls_back_from_an_unknown_window_with_a_message(endpoint, tenant_admin):
    record([delivery_to(endpoint)], at=timezone.now() - timedelta(hours=3))

    response = tenant_admin.get(url("endpoint", endpoint.pk, window="forever"))

    assert messages_shown(response) == ["Unknown window 'forever': showing 24 hours."]
    assert labelled_kpi(response, "attempts") == "1"


def test_the_endpoint_page_links_to_its_admin_settings(endpoint, tenant_admin):
    html = tenant_admin.get(url("endpoint", endpoint.pk)).content.decode()

    admin_link = re.search(r'<a href="([^"]+)">Settings in admin</a>', html).group(1)
    admin_page = tenant_admin.get(admin_link)

    assert admin_link.startswith("/admin/subscriptions/endpoint/")
    assert admin_page.status_code == 200
    assert endpoint.url in admin_page.content.decode()


# --- replay ------------------------------------------------------------------------------------------------


@pytest.fixture
def replayable(tenant, endpoint) -> dict:
    """Deliveries of ``endpoint`` inside and outside a two-hour range, and one of another endpoint."""
    now = timezone.now()
    inside, outside = now - timedelta(hours=1), now - timedelta(days=3)
    done = {"next_attempt_at": None, "completed_at": now, "attempt_count": 8}
    return {
        "since": now - timedelta(hours=2),
        "until": now + timedelta(minutes=5),
        "failed": deliveries_to(endpoint, 2, status=DeliveryStatus.FAILED, created_at=inside, **done),
        "succeeded": delivery_to(endpoint, status=DeliveryStatus.SUCCEEDED, created_at=inside, **done),
        "pending": delivery_to(endpoint, created_at=inside, next_attempt_at=now + timedelta(hours=1)),
        "failed_before": delivery_to(endpoint, status=DeliveryStatus.FAILED, created_at=outside, **done),
        "other_endpoint": delivery_to(
            endpoint_for(tenant, name="billing"), status=DeliveryStatus.FAILED, created_at=inside, **done
        ),
    }


def _replay_form(replayable, which: str = "failed") -> dict:
    return {
        "which": which,
        "since": replayable["since"].strftime(FORM_TIME),
        "until": replayable["until"].strftime(FORM_TIME),
    }


def _all_states() -> dict:
    return {
        pk: values for pk, *values in Delivery.objects.values_list("pk", "status", "next_attempt_at", "lease_until")
    }


def test_a_replay_first_shows_how_many_would_be_sent_and_changes_nothing(endpoint, tenant_admin, replayable):
    before = _all_states()

    response = tenant_admin.post(url("endpoint_replay", endpoint.pk), _replay_form(replayable))

    assert response.status_code == 200
    assert re.search(r'id="replay-preview"><strong>2</strong> failed delivery', response.content.decode())
    assert "Send 2 now" in page(response)
    assert _all_states() == before


def test_the_replay_form_defaults_to_the_last_day(endpoint, tenant_admin, replayable):
    form = section(tenant_admin.get(url("endpoint", endpoint.pk)), "replay-form")
    defaults = dict(re.findall(r'<input type="datetime-local" name="(since|until)" value="([^"]*)"', form))

    response = tenant_admin.post(url("endpoint_replay", endpoint.pk), {"which": "failed", **defaults})

    assert set(defaults) == {"since", "until"}
    assert re.search(r'id="replay-preview"><strong>2</strong> failed delivery', response.content.decode())


def test_a_replay_preview_of_all_deliveries_counts_the_finished_ones(endpoint, tenant_admin, replayable):
    response = tenant_admin.post(url("endpoint_replay", endpoint.pk), _replay_form(replayable, "all"))

    assert re.search(r'id="replay-preview"><strong>3</strong> all delivery', response.content.decode())


def test_confirming_a_replay_resets_exactly_the_matching_deliveries(endpoint, tenant_admin, replayable):
    before = _all_states()
    preview = tenant_admin.post(url("endpoint_replay", endpoint.pk), _replay_form(replayable))

    response = tenant_admin.post(
        url("endpoint_replay", endpoint.pk), hidden_fields(section(preview, "replay-form")), follow=True
    )

    after = _all_states()
    replayed = {d.pk for d in replayable["failed"]}
    assert {pk for pk in after if after[pk] != before[pk]} == replayed
    for pk in replayed:
        status, next_attempt_at, lease_until = after[pk]
        assert (status, lease_until) == (DeliveryStatus.PENDING, None)
        assert next_attempt_at <= timezone.now()
    assert messages_shown(response) == ["Replaying 2 delivery(ies) to this endpoint now."]


def test_a_replay_with_the_range_the_wrong_way_round_shows_an_error_and_changes_nothing(
    endpoint, tenant_admin, replayable
):
    before = _all_states()
    form = {**_replay_form(replayable), "confirm": "True"}
    form["since"], form["until"] = form["until"], form["since"]

    response = tenant_admin.post(url("endpoint_replay", endpoint.pk), form)

    assert response.status_code == 200
    assert "Must be after the start of the range." in page(response)
    assert _all_states() == before


def test_the_log_says_how_far_back_it_goes(tenant_admin, settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETENTION_DAYS": 45}

    line = section(tenant_admin.get(url("deliveries")), "retention")

    assert "goes back 45 days" in line
