"""An endpoint's delivery policy: its retry schedule, auto-disable period, timeout and adaptive concurrency are
checked against the operator's bounds (errors name the field) and written by the services; the operator's named
schedules come from the environment and a system check keeps them within the bounds."""

import math

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from subscriptions import validation
from subscriptions.models import Endpoint
from subscriptions.services import update_endpoint
from tests.factories import URL, endpoint_for, make_endpoint
from webhookhub.checks import retry_schedules_check
from webhookhub.settings import _retry_schedules

pytestmark = pytest.mark.django_db

GOOD_SCHEDULES = [
    (None, None),
    ([], []),
    ([1], [1]),
    ([10, 60.0, 2.5], [10, 60, 2.5]),
    ((5, 5), [5, 5]),
    ([86400] * 20, [86400] * 20),
    ("quick", "quick"),
    ("patient", "patient"),
]
BAD_SCHEDULES = [
    ([0.5], "retry 1: 0.5 s is outside 1 to 86400 seconds"),
    ([10, 86401], "retry 2: 86401 s is outside 1 to 86400 seconds"),
    ([-1], "outside 1 to 86400"),
    ([1] * 21, "has 21 retries; at most 20 are allowed"),
    ([True], "True is not a number of seconds"),
    ([math.nan], "nan is not a number of seconds"),
    ([math.inf], "inf is not a number of seconds"),
    (["10"], "'10' is not a number of seconds"),
    ([[10]], "is not a number of seconds"),
    ("qiuck", "Unknown schedule 'qiuck'; the schedules are: patient, quick, standard."),
    ("", "Unknown schedule ''"),
    (10, "Give a list of seconds"),
    ({"delays": [10]}, "Give a list of seconds"),
    (True, "Give a list of seconds"),
]


@pytest.mark.parametrize(("value", "cleaned"), GOOD_SCHEDULES)
def test_a_retry_schedule_within_the_bounds_is_taken(value, cleaned):
    assert validation.clean_retry_schedule(value) == cleaned


@pytest.mark.parametrize(("value", "message"), BAD_SCHEDULES)
def test_a_retry_schedule_outside_the_bounds_is_refused_naming_the_field(value, message):
    with pytest.raises(ValidationError) as refused:
        validation.clean_retry_schedule(value)

    assert list(refused.value.message_dict) == ["retry_schedule"]
    assert message in refused.value.message_dict["retry_schedule"][0]


def test_the_bounds_are_the_operators(settings):
    settings.WEBHOOKHUB = {
        **settings.WEBHOOKHUB,
        "RETRY_SCHEDULE_MAX_RETRIES": 2,
        "RETRY_DELAY_MIN_SECONDS": 10,
        "RETRY_DELAY_MAX_SECONDS": 100,
        "RETRY_SCHEDULES": {"mine": [10]},
    }

    assert validation.clean_retry_schedule([10, 100]) == [10, 100]
    assert validation.clean_retry_schedule("mine") == "mine"
    for value in ([10, 10, 10], [9], [101], "quick"):
        with pytest.raises(ValidationError):
            validation.clean_retry_schedule(value)


AUTO_DISABLE = [
    (None, None),
    (3600, 3600),
    (30 * 86400, 30 * 86400),
    (3599, "from 3600 (1 h) to 2592000 (30 d)"),
    (30 * 86400 + 1, "from 3600 (1 h) to 2592000 (30 d)"),
    (0, "Give a whole number"),
    (7200.0, "Give a whole number"),
    (True, "Give a whole number"),
    ("7200", "Give a whole number"),
]


@pytest.mark.parametrize(("value", "expected"), AUTO_DISABLE)
def test_auto_disable_after(value, expected):
    if not isinstance(expected, str):
        assert validation.clean_auto_disable_after(value) == expected
        return
    with pytest.raises(ValidationError) as refused:
        validation.clean_auto_disable_after(value)
    assert expected in refused.value.message_dict["auto_disable_after_seconds"][0]


@pytest.mark.parametrize("value", [True, False, 0, -1, 61, math.nan, math.inf, "5"])
def test_a_timeout_outside_0_to_60_seconds_or_not_a_number_is_refused(value):
    with pytest.raises(ValidationError) as refused:
        validation.clean_timeout(value)

    assert list(refused.value.message_dict) == ["timeout_s"]


@pytest.mark.parametrize("value", [None, 1, "yes"])
def test_adaptive_concurrency_is_true_or_false(value):
    with pytest.raises(ValidationError) as refused:
        validation.clean_adaptive_concurrency(value)

    assert refused.value.message_dict == {"adaptive_concurrency": ["Give true or false."]}


def test_create_stores_the_policy(tenant):
    endpoint = endpoint_for(
        tenant, retry_schedule=[10, 60], auto_disable_after_seconds=7200, adaptive_concurrency=False
    )

    endpoint.refresh_from_db()
    assert (endpoint.retry_schedule, endpoint.auto_disable_after_seconds, endpoint.adaptive_concurrency) == (
        [10, 60],
        7200,
        False,
    )


def test_create_defaults_to_the_deployments_policy_and_adaptive_concurrency(tenant):
    endpoint = endpoint_for(tenant)

    assert (endpoint.retry_schedule, endpoint.auto_disable_after_seconds, endpoint.adaptive_concurrency) == (
        None,
        None,
        True,
    )


def test_a_refused_create_writes_nothing(tenant):
    with pytest.raises(ValidationError):
        make_endpoint(tenant, URL, retry_schedule="nope")
    with pytest.raises(ValidationError):
        make_endpoint(tenant, URL, auto_disable_after_seconds=5)

    assert not Endpoint.objects.exists()


def test_update_changes_what_is_given_and_back_to_the_default(tenant):
    endpoint = endpoint_for(tenant, retry_schedule="quick", auto_disable_after_seconds=7200)

    update_endpoint(endpoint=endpoint, retry_schedule=[30])
    endpoint.refresh_from_db()
    assert (endpoint.retry_schedule, endpoint.auto_disable_after_seconds) == ([30], 7200)

    update_endpoint(endpoint=endpoint, retry_schedule=None, auto_disable_after_seconds=None, adaptive_concurrency=False)
    endpoint.refresh_from_db()
    assert (endpoint.retry_schedule, endpoint.auto_disable_after_seconds, endpoint.adaptive_concurrency) == (
        None,
        None,
        False,
    )


def test_a_refused_update_changes_nothing(tenant):
    endpoint = endpoint_for(tenant, retry_schedule=[10])

    with pytest.raises(ValidationError) as refused:
        update_endpoint(endpoint=Endpoint.objects.get(pk=endpoint.pk), name="new", retry_schedule=[0])

    assert list(refused.value.message_dict) == ["retry_schedule"]
    stored = Endpoint.objects.get(pk=endpoint.pk)
    assert (stored.name, stored.retry_schedule) == ("", [10])


# --- the operator's schedules -----------------------------------------------------------------------------


def test_named_schedules_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("WEBHOOKHUB_RETRY_SCHEDULES", '{"quick": [5, 30], "none": [], "slow-1": [3600.5]}')

    assert _retry_schedules("WEBHOOKHUB_RETRY_SCHEDULES") == {"quick": [5, 30], "none": [], "slow-1": [3600.5]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[5, 30]", "must be a non-empty JSON object"),
        ("{}", "must be a non-empty JSON object"),
        ("{quick: [5]}", "must be a JSON object of name to a list of seconds"),
        ('{"Quick!": [5]}', "'Quick!' is not a schedule name"),
        ('{"quick": 5}', "'quick' must be a list of seconds"),
        ('{"quick": ["5"]}', "'quick' must be a list of seconds"),
        ('{"quick": [NaN]}', "'quick' must be a list of seconds"),
        ('{"quick": [true]}', "'quick' must be a list of seconds"),
    ],
)
def test_bad_named_schedules_in_the_environment_stop_the_start(monkeypatch, value, message):
    monkeypatch.setenv("WEBHOOKHUB_RETRY_SCHEDULES", value)

    with pytest.raises(ImproperlyConfigured, match="WEBHOOKHUB_RETRY_SCHEDULES") as refused:
        _retry_schedules("WEBHOOKHUB_RETRY_SCHEDULES")

    assert message in str(refused.value)


def test_the_system_check_is_quiet_about_the_defaults():
    assert retry_schedules_check(None) == []


def test_the_system_check_names_each_schedule_outside_the_bounds(settings):
    settings.WEBHOOKHUB = {
        **settings.WEBHOOKHUB,
        "RETRY_SCHEDULE": [0.1, 5],
        "RETRY_SCHEDULES": {"fine": [5], "huge": [5, 90000]},
    }

    warnings = retry_schedules_check(None)

    assert [warning.msg for warning in warnings] == [
        "WEBHOOKHUB RETRY_SCHEDULE retry 1: 0.1 s is outside 1 to 86400 seconds.",
        "WEBHOOKHUB RETRY_SCHEDULES['huge'] retry 2: 90000 s is outside 1 to 86400 seconds.",
    ]
    assert {warning.id for warning in warnings} == {"webhookhub.W005"}
