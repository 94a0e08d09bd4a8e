"""The endpoint admin's delivery policy: the retry schedule as text (seconds, units, a schedule's name, "none"), the
auto-disable period and adaptive concurrency, with readable errors; and ``add_endpoint``'s options for them."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from subscriptions.models import Endpoint
from tests.factories import URL, endpoint_for
from tests.support.db import db_state, rows
from tests.web.admin.support import admin_url, endpoint_form, form_errors, staff_client, text

pytestmark = pytest.mark.django_db


def _snapshot() -> dict:
    return {
        **db_state(),
        "policy": rows(Endpoint, "retry_schedule", "auto_disable_after_seconds", "adaptive_concurrency"),
    }


def _change(client, endpoint, /, **fields):
    return client.post(
        admin_url("subscriptions_endpoint_change", endpoint.pk), endpoint_form(endpoint.tenant, **fields)
    )


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("10, 60, 600", [10, 60, 600]),
        ("10s,5m, 2h ,1d", [10, 300, 7200, 86400]),
        ("2.5, 90", [2.5, 90]),
        ("quick", "quick"),
        ("none", []),
        ("", None),
    ],
)
def test_the_retry_schedule_is_typed_as_text(tenant_admin, tenant, typed, stored):
    endpoint = endpoint_for(tenant, retry_schedule=[42])

    response = _change(tenant_admin, endpoint, retry_schedule=typed, adaptive_concurrency="on")

    assert response.status_code == 302, form_errors(response)
    assert Endpoint.objects.get(pk=endpoint.pk).retry_schedule == stored


def test_the_change_page_shows_the_stored_schedule_and_the_operators_names(tenant_admin, tenant):
    endpoint = endpoint_for(tenant, retry_schedule=[10, 300.5], auto_disable_after_seconds=7200)

    page = text(tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint.pk)))

    assert 'name="retry_schedule" value="10, 300.5"' in page
    assert "quick: 5, 30, 120, 600, 1800" in page
    assert 'name="auto_disable_after_seconds" value="7200"' in page


def test_the_policy_is_saved_on_add(tenant_admin, tenant):
    response = tenant_admin.post(
        admin_url("subscriptions_endpoint_add"),
        endpoint_form(tenant, retry_schedule="patient", auto_disable_after_seconds="86400"),
    )

    assert response.status_code == 302, form_errors(response)
    endpoint = Endpoint.objects.get(tenant=tenant)
    assert (endpoint.retry_schedule, endpoint.auto_disable_after_seconds, endpoint.adaptive_concurrency) == (
        "patient",
        86400,
        False,  # the box was not ticked
    )


BAD = [
    ({"retry_schedule": "10, soon"}, "retry_schedule", "Retry 2: 'soon' is not a delay."),
    ({"retry_schedule": "qiuck"}, "retry_schedule", "Retry 1: 'qiuck' is not a delay."),
    ({"retry_schedule": "0, 10"}, "retry_schedule", "retry 1: 0 s is outside 1 to 86400 seconds"),
    ({"retry_schedule": "2d"}, "retry_schedule", "retry 1: 172800 s is outside 1 to 86400 seconds"),
    ({"retry_schedule": ", ".join(["1"] * 21)}, "retry_schedule", "at most 20"),
    ({"auto_disable_after_seconds": "60"}, "auto_disable_after_seconds", "from 3600 (1 h) to 2592000 (30 d)"),
    ({"auto_disable_after_seconds": "soon"}, "auto_disable_after_seconds", "Enter a whole number."),
]


@pytest.mark.parametrize(("fields", "field", "message"), BAD, ids=[case[1] + ":" + str(case[0]) for case in BAD])
def test_a_bad_policy_is_a_readable_form_error_and_nothing_changes(tenant_admin, tenant, fields, field, message):
    endpoint = endpoint_for(tenant, retry_schedule=[42])
    before = _snapshot()

    response = _change(tenant_admin, endpoint, **fields)

    assert response.status_code == 200
    errors = form_errors(response)
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert _snapshot() == before


def test_both_policy_errors_show_at_once(tenant_admin, tenant):
    endpoint = endpoint_for(tenant)

    response = _change(tenant_admin, endpoint, retry_schedule="0", auto_disable_after_seconds="1")

    assert set(form_errors(response)) == {"retry_schedule", "auto_disable_after_seconds"}


def test_another_tenants_admin_cannot_change_the_policy(other_admin, tenant):
    endpoint = endpoint_for(tenant)
    before = _snapshot()

    response = _change(other_admin, endpoint, retry_schedule="10")

    assert response.status_code in (302, 404)  # Django admin sends an unknown object back to the index
    assert _snapshot() == before


@pytest.mark.parametrize("role", ["manager", "user"])
def test_other_roles_cannot_change_the_policy(tenant, role):
    endpoint, client = endpoint_for(tenant), staff_client(tenant, role)
    before = _snapshot()

    response = _change(client, endpoint, retry_schedule="10")

    assert response.status_code in (302, 403, 404)
    assert _snapshot() == before


# --- manage.py add_endpoint ------------------------------------------------------------------------------


def _add(tenant, *args) -> Endpoint:
    call_command("add_endpoint", "--tenant", tenant.slug, "--url", URL, *args, stdout=StringIO())
    return Endpoint.objects.get(tenant=tenant)


def test_add_endpoint_takes_a_retry_schedule_and_an_auto_disable_period(tenant):
    endpoint = _add(tenant, "--retry-schedule", "10,5m,1h", "--auto-disable-after", "7200")

    assert (endpoint.retry_schedule, endpoint.auto_disable_after_seconds) == ([10, 300, 3600], 7200)


def test_add_endpoint_takes_a_ceiling_and_a_fixed_concurrency(tenant):
    endpoint = _add(tenant, "--max-in-flight", "4", "--fixed-concurrency")

    assert (endpoint.max_in_flight, endpoint.adaptive_concurrency) == (4, False)
    assert _add_another(tenant).adaptive_concurrency is True  # adaptive unless told


def _add_another(tenant) -> Endpoint:
    call_command("add_endpoint", "--tenant", tenant.slug, "--url", URL + "2", stdout=StringIO())
    return Endpoint.objects.get(tenant=tenant, url=URL + "2")


def test_add_endpoint_takes_a_schedules_name(tenant):
    assert _add(tenant, "--retry-schedule", "patient").retry_schedule == "patient"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--retry-schedule", "10,later"), "--retry-schedule: Retry 2: 'later' is not a delay."),
        (("--retry-schedule", "0"), "--retry-schedule: The retry schedule retry 1: 0 s is outside"),
        (("--auto-disable-after", "5"), "--auto-disable-after: Give a whole number of seconds from 3600"),
        (("--max-in-flight", "0"), "--max-in-flight: "),
    ],
)
def test_add_endpoint_refuses_a_bad_policy_by_option(tenant, args, message):
    with pytest.raises(CommandError) as refused:
        _add(tenant, *args)

    assert str(refused.value).startswith(message)
    assert not Endpoint.objects.exists()
