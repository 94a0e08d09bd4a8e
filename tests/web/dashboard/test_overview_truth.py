"""The overview tells the truth about an endpoint in trouble (issue 27, item 6): its state column shows an open
circuit, a pause and the adaptive limit, and the success figure counts the deliveries still retrying.

The first test is the issue's report as a new user would meet it: one healthy endpoint, one refusing
connections, the real worker sending to both; the overview showed "100% deliveries succeeded" and the dead
endpoint "enabled" while the admin said "circuit open since ...".
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.adaptive import START_LIMIT
from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from deliveries.numbers.windows import WINDOWS
from subscriptions.models import Endpoint
from subscriptions.services import disable_endpoint
from tests.factories import delivery_to, endpoint_for, make_endpoint
from tests.support.processes import free_port
from tests.support.recording import record
from tests.support.sending import drain_due
from tests.web.dashboard.support import deliveries_to, kpi, page, section, url
from webhookhub import publish
from webhookhub.web.dashboard.queries import overview
from webhookhub.web.templatetags.dashboard import percent


def _state_cells(response) -> dict[str, str]:
    """Each endpoint's state cell in the health table, as text: {endpoint name: text}."""
    table = section(response, "endpoint-health")
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    cells = {}
    for row in rows:
        name = re.search(r'<a href="/dashboard/endpoints/[^"]*">([^<]+)</a>', row)
        state = re.search(r'<td class="endpoint-state">(.*?)</td>', row, re.S)
        if name and state:
            cells[name.group(1)] = " ".join(re.sub(r"<[^>]+>", " ", state.group(1)).split())
    return cells


def _retrying_cell(response, endpoint) -> str:
    table = section(response, "endpoint-health")
    found = re.search(rf"endpoint={endpoint.pk}&(?:amp;)?status=retrying[^>]*>(\d+)</a>", table)
    return found.group(1) if found else "0"


@pytest.mark.django_db(transaction=True)  # the worker records from its own connections
@pytest.mark.usefixtures("loopback_receivers")
def test_a_dead_endpoint_shows_its_circuit_and_its_retries_count_against_the_success_figure(
    tenant, receiver, tenant_admin
):
    healthy = make_endpoint(tenant, receiver.url("/in"), name="healthy").endpoint
    dead = make_endpoint(tenant, f"http://127.0.0.1:{free_port()}/in", name="dead").endpoint  # refuses
    for n in range(7):
        publish(tenant=tenant, type="message.received", data={"n": n})

    drain_due()

    schedule = EndpointSchedule.objects.get(endpoint=dead)
    assert schedule.circuit_opened_at is not None  # the worker opened the circuit
    retrying = Delivery.objects.filter(endpoint=dead, status=DeliveryStatus.PENDING, attempt_count__gt=0).count()
    assert retrying >= 5 and Delivery.objects.filter(endpoint=healthy, status=DeliveryStatus.SUCCEEDED).count() == 7
    assert not Delivery.objects.filter(endpoint=dead, status=DeliveryStatus.FAILED).exists()  # none finished
    # The report: counting finished deliveries only, all 7 of them succeeded.
    assert overview([tenant.pk], WINDOWS["24h"]).totals.delivery_success_rate == 1.0

    response = tenant_admin.get(url("overview"))

    assert kpi(response, "kpi-success-rate") == percent(7 / (7 + retrying))  # not "100%"
    assert kpi(response, "kpi-success-retrying") == f"{retrying} retrying"
    assert kpi(response, "kpi-pending") == str(retrying)
    states = _state_cells(response)
    assert states["dead"].startswith(f"circuit open since {schedule.circuit_opened_at:%Y-%m-%d %H:%M} UTC")
    assert "enabled" not in states["dead"]
    assert states["healthy"].startswith("enabled ")
    assert _retrying_cell(response, dead) == str(retrying)
    assert _retrying_cell(response, healthy) == "0"


# --- the same truths from rows written directly ---------------------------------------------------------


@pytest.mark.django_db
def test_the_success_figure_counts_deliveries_still_retrying(tenant, tenant_admin):
    ok = endpoint_for(tenant, name="ok")
    down = endpoint_for(tenant, name="down")
    record(deliveries_to(ok, 93))
    record(deliveries_to(down, 7), status=None, error="Connection refused")

    response = tenant_admin.get(url("overview"))

    assert kpi(response, "kpi-success-rate") == "93.0%"
    assert kpi(response, "kpi-success-retrying") == "7 retrying"
    assert "of the deliveries that finished in this window and those still retrying now" in page(response).lower()


@pytest.mark.django_db
def test_with_nothing_retrying_the_figure_says_nothing_of_retries(tenant, tenant_admin):
    ok = endpoint_for(tenant, name="ok")
    record(deliveries_to(ok, 3))

    response = tenant_admin.get(url("overview"))

    assert kpi(response, "kpi-success-rate") == "100%"
    assert 'id="kpi-success-retrying"' not in response.content.decode()


@pytest.mark.parametrize(("rate", "shown"), [(0.9996, "99.9%"), (0.9731, "97.3%"), (1.0, "100%"), (None, "–")])
def test_a_rate_short_of_one_never_reads_100(rate, shown):
    assert percent(rate) == shown


@pytest.mark.django_db
def test_the_figure_is_the_share_of_finished_and_retrying_deliveries_that_succeeded(tenant):
    ok = endpoint_for(tenant)
    record(deliveries_to(ok, 3))
    record(deliveries_to(ok, 1), status=500, final=True)
    record(deliveries_to(ok, 4), status=503)

    summary = overview([tenant.pk], WINDOWS["24h"])

    assert (summary.totals.successes, summary.totals.failures, summary.retries_pending) == (3, 1, 4)
    assert summary.delivery_success_rate == 3 / 8
    assert summary.totals.delivery_success_rate == 3 / 4  # finished ones only: what the overview used to show


@pytest.mark.django_db
def test_retrying_deliveries_of_another_tenant_are_not_counted(tenant, other_tenant, tenant_admin):
    record(deliveries_to(endpoint_for(tenant, name="ours"), 3))
    record(deliveries_to(endpoint_for(other_tenant, name="theirs"), 4), status=503)

    response = tenant_admin.get(url("overview"))

    assert kpi(response, "kpi-success-rate") == "100%"
    assert kpi(response, "kpi-pending") == "0"
    assert "theirs" not in response.content.decode()


@pytest.mark.django_db
def test_the_state_column_shows_an_open_circuit_with_its_next_probe(tenant, tenant_admin):
    down = endpoint_for(tenant, name="down")
    opened = timezone.now() - timedelta(minutes=9)
    EndpointSchedule.objects.create(
        endpoint=down,
        down_in_a_row=5,
        circuit_opened_at=opened,
        next_probe_at=opened + timedelta(minutes=10),
        concurrency_limit=1,
        concurrency_limited_by="refused",
        concurrency_limited_at=2,
    )
    record(deliveries_to(down, 7), status=None, error="Connection refused")

    response = tenant_admin.get(url("overview"))

    assert _state_cells(response)["down"] == (
        f"circuit open since {opened:%Y-%m-%d %H:%M} UTC, next probe {opened + timedelta(minutes=10):%H:%M:%S} UTC "
        "sending 1 at a time, limited by: refused connections at 2"
    )
    assert _retrying_cell(response, down) == "7"


@pytest.mark.django_db
def test_the_state_column_shows_a_pause_and_why_while_it_lasts(tenant, tenant_admin):
    busy = endpoint_for(tenant, name="busy", max_in_flight=8)
    until = timezone.now() + timedelta(minutes=2)
    schedule = EndpointSchedule.objects.create(
        endpoint=busy,
        paused_until=until,
        pause_reason="Retry-After: 120",
        concurrency_limit=3,
        concurrency_limited_by="429",
        concurrency_limited_at=6,
    )

    paused = _state_cells(tenant_admin.get(url("overview")))["busy"]
    schedule.paused_until = timezone.now() - timedelta(seconds=1)
    schedule.save()
    over = _state_cells(tenant_admin.get(url("overview")))["busy"]

    assert paused == (
        f"paused until {until:%Y-%m-%d %H:%M:%S} UTC (Retry-After: 120) sending 3 at a time, limited by: 429s at 6"
    )
    assert over == "enabled sending 3 at a time, limited by: 429s at 6"


@pytest.mark.parametrize(
    ("adaptive", "limit", "limited_by", "limited_at", "shown"),
    [
        (True, 6, "429", 7, "enabled sending 6 at a time, limited by: 429s at 7"),
        (True, 8, "", None, "enabled sending up to 8 at a time (its ceiling)"),
        (True, 4, "", None, "enabled ramping up: 4 at a time of up to 8"),
        (True, None, "", None, f"enabled starts at {START_LIMIT} at a time, up to 8"),
        (False, 3, "timeout", 5, "enabled up to 8 at a time (fixed)"),
    ],
)
@pytest.mark.django_db
def test_the_state_column_shows_the_adaptive_limit(
    tenant, tenant_admin, adaptive, limit, limited_by, limited_at, shown
):
    endpoint = endpoint_for(tenant, name="orders", max_in_flight=8)
    Endpoint.objects.filter(pk=endpoint.pk).update(adaptive_concurrency=adaptive)
    EndpointSchedule.objects.create(
        endpoint=endpoint,
        concurrency_limit=limit,
        concurrency_limited_by=limited_by,
        concurrency_limited_at=limited_at,
    )

    assert _state_cells(tenant_admin.get(url("overview")))["orders"] == shown


@pytest.mark.django_db
def test_an_endpoint_without_a_schedule_row_shows_where_it_starts(tenant, tenant_admin):
    endpoint_for(tenant, name="new", max_in_flight=4)

    assert (
        _state_cells(tenant_admin.get(url("overview")))["new"] == f"enabled starts at {START_LIMIT} at a time, up to 4"
    )


@pytest.mark.django_db
def test_a_disabled_endpoint_shows_why_and_no_limit(tenant, tenant_admin):
    gone = endpoint_for(tenant, name="gone")
    EndpointSchedule.objects.create(endpoint=gone, circuit_opened_at=timezone.now(), concurrency_limit=1)
    disable_endpoint(endpoint=gone, reason="Disabled by an admin.", notify=False)

    assert _state_cells(tenant_admin.get(url("overview")))["gone"] == "disabled Disabled by an admin."


@pytest.mark.django_db
def test_an_open_circuit_sorts_right_after_the_disabled_endpoints(tenant, tenant_admin):
    failing = endpoint_for(tenant, name="failing")
    down = endpoint_for(tenant, name="down")
    record([delivery_to(failing)], status=500)
    record([delivery_to(down)])  # its last answer was fine, then it went away
    EndpointSchedule.objects.create(endpoint=down, circuit_opened_at=timezone.now())

    assert list(_state_cells(tenant_admin.get(url("overview")))) == ["down", "failing"]


@pytest.mark.django_db
def test_the_overview_reads_states_without_a_query_per_endpoint(tenant, tenant_admin, django_assert_max_num_queries):
    for n in range(3):
        endpoint = endpoint_for(tenant, name=f"e{n}")
        EndpointSchedule.objects.create(endpoint=endpoint, concurrency_limit=2, concurrency_limited_by="429")
        Delivery.objects.filter(pk=delivery_to(endpoint).pk).update(attempt_count=1)
    tenant_admin.get(url("overview"))  # warm the session and caches
    with django_assert_max_num_queries(40) as few:
        tenant_admin.get(url("overview"))
    for n in range(3, 13):
        endpoint = endpoint_for(tenant, name=f"e{n}")
        EndpointSchedule.objects.create(endpoint=endpoint, concurrency_limit=2, concurrency_limited_by="429")
        Delivery.objects.filter(pk=delivery_to(endpoint).pk).update(attempt_count=1)

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = tenant_admin.get(url("overview"))

    assert kpi(response, "kpi-pending") == "13"
