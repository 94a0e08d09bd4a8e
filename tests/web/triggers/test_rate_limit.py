"""Rate limiting per trigger: a count per trigger and minute, the trigger's own limit or the deployment default."""

import pytest

from deliveries.models import Delivery
from events.models import Event, TriggerRequest
from events.triggers import take_rate_slot
from tests.web.triggers.support import CAPTURED, make_trigger, nothing_published, post_capture

pytestmark = pytest.mark.django_db

MINUTE = 29_000_000 * 60  # the start of some minute, in seconds since the epoch


def _slots(trigger, n: int, now: float) -> list[int | None]:
    return [take_rate_slot(trigger, now=now) for _ in range(n)]


# --- the window -------------------------------------------------------------------------------------


def test_a_trigger_takes_its_limit_per_minute_then_is_told_when_the_minute_ends(tenant):
    trigger = make_trigger(tenant, rate_limit_per_minute=3).trigger

    assert _slots(trigger, 3, MINUTE + 10) == [None, None, None]
    assert take_rate_slot(trigger, now=MINUTE + 20) == 40
    assert take_rate_slot(trigger, now=MINUTE + 59.5) == 1


@pytest.mark.parametrize(("second", "wait"), [(0, 60), (0.2, 60), (30, 30), (59.01, 1), (59.999, 1)])
def test_the_wait_is_the_whole_seconds_until_the_next_minute_and_at_least_one(tenant, second, wait):
    trigger = make_trigger(tenant, rate_limit_per_minute=1).trigger
    take_rate_slot(trigger, now=MINUTE + second)

    assert take_rate_slot(trigger, now=MINUTE + second) == wait


def test_the_count_starts_again_in_the_next_minute(tenant):
    trigger = make_trigger(tenant, rate_limit_per_minute=2).trigger
    _slots(trigger, 3, MINUTE + 50)

    assert _slots(trigger, 3, MINUTE + 60) == [None, None, 60]
    assert _slots(trigger, 2, MINUTE + 60 * 5 + 1) == [None, None]


def test_refused_requests_count_too_within_the_minute(tenant):
    trigger = make_trigger(tenant, rate_limit_per_minute=1).trigger

    assert _slots(trigger, 4, MINUTE) == [None, 60, 60, 60]


def test_without_its_own_limit_a_trigger_takes_the_deployment_default(tenant, rate_limit):
    rate_limit(2)
    trigger = make_trigger(tenant).trigger

    assert trigger.rate_limit_per_minute is None
    assert _slots(trigger, 3, MINUTE) == [None, None, 60]


def test_the_default_is_600_per_minute(tenant):
    trigger = make_trigger(tenant).trigger

    assert _slots(trigger, 600, MINUTE) == [None] * 600
    assert take_rate_slot(trigger, now=MINUTE) == 60


def test_a_triggers_own_limit_overrides_the_default(tenant, rate_limit):
    rate_limit(1)
    trigger = make_trigger(tenant, rate_limit_per_minute=3).trigger

    assert _slots(trigger, 4, MINUTE) == [None, None, None, 60]


def test_one_triggers_count_does_not_use_up_anothers(tenant, other_tenant):
    busy = make_trigger(tenant, rate_limit_per_minute=2).trigger
    quiet = make_trigger(tenant, name="quiet", rate_limit_per_minute=2).trigger
    elsewhere = make_trigger(other_tenant, rate_limit_per_minute=2).trigger

    _slots(busy, 5, MINUTE)

    assert _slots(quiet, 2, MINUTE) == [None, None]
    assert _slots(elsewhere, 2, MINUTE) == [None, None]
    assert take_rate_slot(busy, now=MINUTE) == 60


# --- over HTTP --------------------------------------------------------------------------------------


@pytest.fixture
def frozen_clock(monkeypatch):
    """Requests all land 15 s into the same minute."""
    monkeypatch.setattr("events.triggers.time", lambda: MINUTE + 15)


def test_a_request_over_the_limit_is_429_with_retry_after(tenant, frozen_clock):
    created = make_trigger(tenant, rate_limit_per_minute=2)
    allowed = [post_capture(created.trigger.pk, key=created.api_key) for _ in range(2)]
    events_before = Event.objects.count()

    refused = post_capture(created.trigger.pk, key=created.api_key)

    assert [r.status_code for r in allowed] == [200, 200]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "45"
    body = refused.json()
    assert set(body) == {"detail", "errors"} and "45" in body["detail"]
    assert refused.json() != CAPTURED
    assert Event.objects.count() == events_before == 2


def test_a_refused_request_publishes_nothing_and_is_not_logged(tenant, frozen_clock):
    created = make_trigger(tenant, rate_limit_per_minute=1)
    take_rate_slot(created.trigger)

    response = post_capture(created.trigger.pk, key=created.api_key)

    assert response.status_code == 429
    assert nothing_published()
    assert not TriggerRequest.objects.exists()


def test_the_deployment_default_limits_requests_over_http(tenant, rate_limit, frozen_clock):
    rate_limit(1)
    created = make_trigger(tenant)

    statuses = [post_capture(created.trigger.pk, key=created.api_key).status_code for _ in range(2)]

    assert statuses == [200, 429]
    assert Event.objects.count() == 1


def test_one_trigger_at_its_limit_does_not_refuse_another(tenant, frozen_clock):
    busy = make_trigger(tenant, rate_limit_per_minute=1)
    other = make_trigger(tenant, name="other", rate_limit_per_minute=1)
    post_capture(busy.trigger.pk, key=busy.api_key)

    assert post_capture(busy.trigger.pk, key=busy.api_key).status_code == 429
    assert post_capture(other.trigger.pk, key=other.api_key).status_code == 200


def test_requests_with_a_wrong_key_do_not_use_up_the_limit(tenant, frozen_clock):
    created = make_trigger(tenant, rate_limit_per_minute=1)

    wrong = [post_capture(created.trigger.pk, key="whtrg_wrong").status_code for _ in range(3)]

    assert wrong == [401, 401, 401]
    assert post_capture(created.trigger.pk, key=created.api_key).status_code == 200
    assert Delivery.objects.count() == 0


def test_requests_are_accepted_again_in_the_next_minute(tenant, monkeypatch):
    created = make_trigger(tenant, rate_limit_per_minute=1)
    monkeypatch.setattr("events.triggers.time", lambda: MINUTE + 59)
    first, refused = (post_capture(created.trigger.pk, key=created.api_key) for _ in range(2))
    assert (first.status_code, refused.status_code, refused["Retry-After"]) == (200, 429, "1")

    monkeypatch.setattr("events.triggers.time", lambda: MINUTE + 60)

    assert post_capture(created.trigger.pk, key=created.api_key).status_code == 200
    assert Event.objects.count() == 2


def test_a_process_whose_clock_is_behind_does_not_restart_the_count(tenant):
    trigger = make_trigger(tenant, rate_limit_per_minute=2).trigger
    _slots(trigger, 2, MINUTE + 60 + 1)  # a process already in the next minute took the limit

    # Another web process, a second behind, must not reset the count to its own (older) minute.
    assert take_rate_slot(trigger, now=MINUTE + 59.5) is not None
