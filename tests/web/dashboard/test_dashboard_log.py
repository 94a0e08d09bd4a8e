"""The delivery log: filters, text search, newest first, keyset pages, and bad filter values."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from tests.factories import delivery_to, endpoint_for
from tests.web.dashboard.support import FORM_TIME, keyed_deliveries, link, listed, page, url

pytestmark = pytest.mark.django_db

NO_ROWS = "Fix the filters above to see deliveries."


def _created(delivery: Delivery, moment: datetime) -> Delivery:
    Delivery.objects.filter(pk=delivery.pk).update(created_at=moment)
    delivery.refresh_from_db()
    return delivery


def _log(client, **query) -> list[int]:
    response = client.get(url("deliveries", **query))
    assert response.status_code == 200
    return listed(response)


# --- order and filters -------------------------------------------------------------------------------


def test_the_log_lists_deliveries_newest_first(endpoint, tenant_admin):
    now = timezone.now()
    middle = _created(delivery_to(endpoint), now - timedelta(minutes=5))
    newest = _created(delivery_to(endpoint), now - timedelta(minutes=1))
    oldest = _created(delivery_to(endpoint), now - timedelta(minutes=9))

    assert _log(tenant_admin) == [newest.pk, middle.pk, oldest.pk]


def test_filtering_by_endpoint_lists_only_that_endpoints_deliveries(tenant, endpoint, tenant_admin):
    wanted = delivery_to(endpoint)
    delivery_to(endpoint_for(tenant, name="billing"))

    assert _log(tenant_admin, endpoint=endpoint.pk) == [wanted.pk]


def test_filtering_by_event_type_lists_only_that_types_deliveries(endpoint, tenant_admin):
    sent = delivery_to(endpoint, type="message.sent")
    delivery_to(endpoint, type="message.received")

    assert _log(tenant_admin, event_type="message.sent") == [sent.pk]


def test_filtering_by_status_lists_only_deliveries_in_that_status(endpoint, tenant_admin):
    failed = delivery_to(endpoint, status=DeliveryStatus.FAILED, next_attempt_at=None)
    delivery_to(endpoint)
    delivery_to(endpoint, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None)

    assert _log(tenant_admin, status="failed") == [failed.pk]


def test_a_time_range_includes_its_start_and_excludes_its_end(endpoint, tenant_admin):
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    end = datetime(2025, 3, 1, 13, 0, tzinfo=UTC)
    at_start = _created(delivery_to(endpoint), start)
    inside = _created(delivery_to(endpoint), start + timedelta(minutes=30))
    _created(delivery_to(endpoint), end)
    _created(delivery_to(endpoint), start - timedelta(seconds=1))

    listed_ids = _log(tenant_admin, since=start.strftime(FORM_TIME), until=end.strftime(FORM_TIME))

    assert listed_ids == [inside.pk, at_start.pk]


def test_filtering_by_event_id_lists_that_events_deliveries(tenant, endpoint, tenant_admin):
    first = delivery_to(endpoint)
    delivery_to(endpoint)

    assert _log(tenant_admin, event=first.event_id) == [first.pk]


def test_filtering_by_ordering_key_lists_only_that_keys_deliveries(endpoint, tenant_admin):
    first, second = keyed_deliveries(endpoint, "conv_1", 2)
    keyed_deliveries(endpoint, "conv_10", 1)
    delivery_to(endpoint)  # no key

    assert _log(tenant_admin, ordering_key="conv_1") == [second.pk, first.pk]
    assert _log(tenant_admin, ordering_key="conv") == []  # exact: no prefix or substring match
    assert _log(tenant_admin, ordering_key="CONV_1") == []


def test_the_log_shows_each_keyed_deliverys_key_and_number_linking_to_that_key(endpoint, tenant_admin):
    keyed_deliveries(endpoint, "conv_1", 2)
    delivery_to(endpoint)  # no key: an empty cell

    html = tenant_admin.get(url("deliveries")).content.decode()

    key_cell = r'<a href="\?ordering_key=conv_1" class="ordering-key">conv_1</a> <span class="muted">#(\d+)</span>'
    assert re.findall(key_cell, html) == ["2", "1"]  # newest first
    assert html.count('class="ordering-key"') == 2


# --- text search -------------------------------------------------------------------------------------


def _expected_for(text: str, deliveries: list[Delivery]) -> set[int]:
    """What the search promises: an event or delivery id, or text in the payload or the last error."""
    return {
        d.pk
        for d in deliveries
        if text in (d.event_id, str(d.pk)) or text in d.event.body or text.lower() in d.last_error.lower()
    }


def test_searching_for_an_event_id_lists_that_events_delivery(endpoint, tenant_admin):
    deliveries = [delivery_to(endpoint) for _ in range(3)]

    assert _log(tenant_admin, q=deliveries[1].event_id) == [deliveries[1].pk]


def test_the_retrying_filter_lists_pending_deliveries_that_were_tried(endpoint, tenant_admin):
    retrying = delivery_to(endpoint, attempt_count=2)
    delivery_to(endpoint)  # pending, never tried
    delivery_to(endpoint, status=DeliveryStatus.FAILED, next_attempt_at=None, attempt_count=3)

    assert _log(tenant_admin, status="retrying") == [retrying.pk]


def test_searching_for_an_id_finds_a_delivery_older_than_the_payload_search_day(endpoint, tenant_admin):
    old = _created(delivery_to(endpoint), timezone.now() - timedelta(days=20))
    delivery_to(endpoint)

    assert _log(tenant_admin, q=old.event_id) == [old.pk]
    assert _log(tenant_admin, q=str(old.pk)) == [old.pk]


def test_searching_for_a_delivery_id_lists_that_delivery(endpoint, tenant_admin):
    deliveries = [delivery_to(endpoint) for _ in range(3)]
    wanted = deliveries[1]

    # An id finds that delivery, even where the same digits appear in other payloads (their timestamps).
    assert _log(tenant_admin, q=str(wanted.pk)) == [wanted.pk]


def test_searching_for_payload_text_lists_the_deliveries_whose_event_contains_it(endpoint, tenant_admin):
    matching = delivery_to(endpoint, data={"note": "parcel-7QX-lost"})
    delivery_to(endpoint, data={"note": "parcel-8ZZ-found"})

    assert _log(tenant_admin, q="parcel-7QX-lost") == [matching.pk]


def test_searching_for_error_text_lists_the_deliveries_whose_last_error_contains_it(endpoint, tenant_admin):
    matching = delivery_to(endpoint, last_error="TLS handshake failed with 93.184.216.34")
    delivery_to(endpoint, last_error="HTTP 500")

    assert _log(tenant_admin, q="tls handshake") == [matching.pk]


def test_a_payload_search_without_a_range_covers_the_last_day_and_says_so(endpoint, tenant_admin):
    recent = _created(delivery_to(endpoint, data={"note": "needle-42"}), timezone.now() - timedelta(hours=23))
    _created(delivery_to(endpoint, data={"note": "needle-42"}), timezone.now() - timedelta(hours=25))

    response = tenant_admin.get(url("deliveries", q="needle-42"))

    assert listed(response) == [recent.pk]
    assert 'id="search-span"' in response.content.decode()
    assert "choose a time range to search further back" in page(response)


def test_a_payload_search_with_a_range_goes_further_back_and_says_nothing_of_a_day(endpoint, tenant_admin):
    recent = _created(delivery_to(endpoint, data={"note": "needle-42"}), timezone.now() - timedelta(hours=23))
    old = _created(delivery_to(endpoint, data={"note": "needle-42"}), timezone.now() - timedelta(days=3))

    since = (timezone.now() - timedelta(days=4)).strftime(FORM_TIME)
    response = tenant_admin.get(url("deliveries", q="needle-42", since=since))

    assert listed(response) == [recent.pk, old.pk]
    assert 'id="search-span"' not in response.content.decode()


def test_a_payload_search_with_only_an_end_searches_the_day_before_that_end(endpoint, tenant_admin):
    now = timezone.now()
    before_end = _created(delivery_to(endpoint, data={"note": "needle-42"}), now - timedelta(days=3, hours=2))
    _created(delivery_to(endpoint, data={"note": "needle-42"}), now - timedelta(days=2))  # after the end

    response = tenant_admin.get(url("deliveries", q="needle-42", until=(now - timedelta(days=3)).strftime(FORM_TIME)))

    assert listed(response) == [before_end.pk]


# --- pages -------------------------------------------------------------------------------------------


@pytest.fixture
def many(endpoint) -> list[int]:
    """55 deliveries, three to a timestamp (ties across the page break); ids newest first."""
    base = timezone.now() - timedelta(hours=1)
    deliveries = [delivery_to(endpoint) for _ in range(55)]
    for i, delivery in enumerate(deliveries):
        _created(delivery, base + timedelta(seconds=i // 3))
    ordered = sorted(deliveries, key=lambda d: (d.created_at, d.pk), reverse=True)
    return [d.pk for d in ordered]


def test_the_first_page_shows_the_50_newest_and_links_to_older_ones(many, tenant_admin):
    response = tenant_admin.get(url("deliveries"))

    assert listed(response) == many[:50]
    assert link(response, "older") is not None
    assert link(response, "newer") is None


def test_the_older_link_gives_the_rest_without_duplicates_or_gaps(many, tenant_admin):
    first = tenant_admin.get(url("deliveries"))

    second = tenant_admin.get(url("deliveries") + link(first, "older"))

    assert listed(first) + listed(second) == many
    assert link(second, "older") is None
    assert link(second, "newer") is not None


def test_the_newer_link_goes_back_to_the_first_page(many, tenant_admin):
    first = tenant_admin.get(url("deliveries"))
    second = tenant_admin.get(url("deliveries") + link(first, "older"))

    back = tenant_admin.get(url("deliveries") + link(second, "newer"))

    assert listed(back) == many[:50]
    assert link(back, "newer") is None
    assert link(back, "older") is not None


def test_paging_keeps_the_filters(endpoint, tenant_admin):
    failed = [delivery_to(endpoint, status=DeliveryStatus.FAILED, next_attempt_at=None) for _ in range(52)]
    delivery_to(endpoint)
    first = tenant_admin.get(url("deliveries", status="failed"))

    second = tenant_admin.get(url("deliveries") + link(first, "older"))

    assert "status=failed" in link(first, "older")
    assert sorted(listed(first) + listed(second)) == sorted(d.pk for d in failed)


# --- bad filter values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"since": "yesterday"}, "Enter a valid date/time."),
        ({"until": "2025-13-45T99:99"}, "Enter a valid date/time."),
        ({"since": "2025-03-02T10:00", "until": "2025-03-01T10:00"}, "Must be after the start of the range."),
        ({"status": "exploded"}, "Select a valid choice. exploded is not one of the available choices."),
        ({"event_type": "no.such.type"}, "Select a valid choice. no.such.type is not one of the available choices."),
        ({"ordering_key": "k" * 201}, "Ensure this value has at most 200 characters (it has 201)."),
        ({"ordering_key": "conv\x00_1"}, "Null characters are not allowed."),
    ],
    ids=[
        "bad-since",
        "bad-until",
        "until-before-since",
        "unknown-status",
        "unknown-event-type",
        "long-ordering-key",
        "nul-in-ordering-key",
    ],
)
def test_a_bad_filter_value_shows_a_form_error_and_no_rows(endpoint, tenant_admin, query, error):
    delivery_to(endpoint)

    response = tenant_admin.get(url("deliveries", **query))

    assert response.status_code == 200
    assert error in page(response)
    assert NO_ROWS in page(response)
    assert listed(response) == []


@pytest.mark.parametrize("cursor", ["before", "after"])
def test_a_cursor_that_is_not_a_delivery_id_shows_the_newest_page(endpoint, tenant_admin, cursor):
    delivery = delivery_to(endpoint)

    assert _log(tenant_admin, **{cursor: "abc"}) == [delivery.pk]
