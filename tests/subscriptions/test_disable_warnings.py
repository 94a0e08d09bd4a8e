"""Warnings before an auto-disable: the points of a failing spell, each warned once per spell however the
batches fall, from a task that e-mails the tenant's admins; and each endpoint disabled at its own period.

The batches go through the recording path the worker uses (``decide_results`` then ``write``), each as of a
chosen ``now`` (its ``decided_at``), so days of failing take no time.
"""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from deliveries.http import HttpResult
from deliveries.models import Delivery
from deliveries.services.recording import decide_results, write
from deliveries.services.sending import SendResult
from ground.conf import webhookhub_settings
from ground.statements import execute_together
from ground.task_names import NOTIFY_DISABLE_WARNING_TASK, NOTIFY_DISABLED_TASK
from subscriptions.health import auto_disable_period, in_words
from subscriptions.models import Endpoint, EndpointHealth
from subscriptions.services import restart_failing_clock
from subscriptions.tasks import notify_disable_warning_task
from subscriptions.warnings import DueWarning, claim_statement, warning_points
from tests.factories import MembershipFactory, TenantFactory, delivery_to, endpoint_for, failing_for
from tests.support.broker import captured_queue

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)
D = timedelta(days=1)
NOTICES = (NOTIFY_DISABLE_WARNING_TASK, NOTIFY_DISABLED_TASK)


@pytest.fixture
def recorded(django_capture_on_commit_callbacks):
    """``recorded(endpoint, at, status=500)``: one attempt of a new event to ``endpoint``, recorded as the worker
    records it as of ``at``; returns the notices (task name, args) queued when the recording committed."""
    config = {**webhookhub_settings(), "RETRY_SCHEDULE": [24 * 3600] * 3}  # no retry falls due meanwhile

    def record(endpoint: Endpoint, at: datetime, *, status: int | None = 500, error: str = "") -> list:
        delivery = delivery_to(endpoint)
        lease = timezone.now() + timedelta(seconds=60)
        Delivery.objects.filter(pk=delivery.pk).update(lease_until=lease)  # claimed, as a worker's claim leaves it
        delivery = Delivery.objects.select_related("event", "endpoint").get(pk=delivery.pk)
        delivery.claimed_lease = lease
        sent = SendResult(delivery, at, {}, HttpResult(status, error=error, duration_ms=5))
        with captured_queue() as queue:
            with django_capture_on_commit_callbacks(execute=True):
                write(replace(decide_results([sent], [], config), decided_at=at))
            return [(name, args) for name, args in queue.messages(wait=0.2) if name in NOTICES]

    return record


def _warning(endpoint: Endpoint) -> tuple[str, list]:
    """The notice queued for a warning about ``endpoint``'s current spell."""
    since = EndpointHealth.objects.get(endpoint=endpoint).failing_since
    return (NOTIFY_DISABLE_WARNING_TASK, [endpoint.pk, since.isoformat()])


def _with(settings, **values) -> None:
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, **values}


# --- the points ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "after", "shares", "points"),
    [
        (5 * D, 3600, [0.5, 0.9], [H, 2.5 * D, 4.5 * D]),
        (H, 3600, [0.5, 0.9], [0.5 * H, 0.9 * H]),  # the 1 h point is at the period: left out
        (2 * H, 3600, [0.5, 0.9], [H, 1.8 * H]),  # 1 h twice (after, and half the period): once
        (5 * D, 3600, [0.9, 0.5, 0.5], [H, 2.5 * D, 4.5 * D]),  # sorted, duplicates once
        (5 * D, 0, [0.5], [2.5 * D]),  # 0: no fixed point
        (5 * D, 3600, [], [H]),
        (30 * 60 * timedelta(seconds=1), 3600, [0.5], [15 * timedelta(minutes=1)]),  # after past the period
    ],
)
def test_the_warning_points_of_a_period(settings, period, after, shares, points):
    _with(settings, DISABLE_WARNING_AFTER_SECONDS=after, DISABLE_WARNING_SHARES=shares)

    assert warning_points(period) == points


def test_an_endpoints_own_period_replaces_the_deployments(tenant, settings):
    _with(settings, AUTO_DISABLE_AFTER_SECONDS=5 * 24 * 3600)
    own = endpoint_for(tenant)
    Endpoint.objects.filter(pk=own.pk).update(auto_disable_after_seconds=7200)
    own.refresh_from_db()

    assert auto_disable_period(own) == 2 * H
    assert auto_disable_period(endpoint_for(tenant)) == 5 * D


@pytest.mark.parametrize(
    ("period", "long", "short"),
    [
        (5 * D, "5 days", "5 d"),
        (2 * D + 3 * H + timedelta(minutes=59, seconds=59), "2 days 4 hours", "2 d 4 h"),
        (timedelta(minutes=90), "1 hour 30 minutes", "1 h 30 min"),
        (H, "1 hour", "1 h"),
        (timedelta(seconds=8), "8 seconds", "8 s"),
    ],
)
def test_periods_in_words(period, long, short):
    assert (in_words(period), in_words(period, short=True)) == (long, short)


# --- once each, per spell -------------------------------------------------------------------------------------


def test_each_point_is_warned_once_across_repeated_batches_then_the_endpoint_is_disabled(tenant, recorded):
    endpoint = endpoint_for(tenant)  # the deployment's 5 days: points at 1 h, 2.5 d and 4.5 d
    start = timezone.now()
    sent_at = {}
    for offset in (0 * H, 0.5 * H, H, 1.1 * H, 2 * H, 2.5 * D, 2.6 * D, 3 * D, 4.5 * D, 4.8 * D, 4.9 * D):
        sent_at[offset] = recorded(endpoint, start + offset)

    warning = _warning(endpoint)
    assert {offset: notices for offset, notices in sent_at.items() if notices} == {
        H: [warning],
        2.5 * D: [warning],
        4.5 * D: [warning],
    }
    health = EndpointHealth.objects.get(endpoint=endpoint)
    assert (health.warned_spell, health.warnings_sent) == (health.failing_since, 3)

    notices = recorded(endpoint, start + 5 * D)

    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert notices == [(NOTIFY_DISABLED_TASK, [endpoint.pk, endpoint.disabled_reason])]  # no warning at the end


def test_points_passed_together_make_one_warning_for_the_latest(tenant, recorded):
    endpoint = endpoint_for(tenant)
    start = timezone.now()
    recorded(endpoint, start)

    # No batch for 4.6 days (the recorders were down): the 1 h, 2.5 d and 4.5 d points all passed.
    together = recorded(endpoint, start + 4.6 * D)
    later = recorded(endpoint, start + 4.7 * D)

    assert together == [_warning(endpoint)]
    assert later == []
    assert EndpointHealth.objects.get(endpoint=endpoint).warnings_sent == 3


def test_a_success_ends_the_spell_and_the_next_spell_warns_again_from_the_first_point(tenant, recorded):
    endpoint = endpoint_for(tenant)
    start = timezone.now()
    recorded(endpoint, start)
    first = recorded(endpoint, start + 2 * H)
    first_warning = _warning(endpoint)
    recorded(endpoint, start + 3 * H, status=200)
    assert EndpointHealth.objects.get(endpoint=endpoint).failing_since is None

    again = start + 4 * H
    recorded(endpoint, again)  # a new spell begins
    before_its_first_point = recorded(endpoint, again + 0.9 * H)
    at_its_first_point = recorded(endpoint, again + H)

    assert first == [first_warning]
    assert before_its_first_point == []
    assert at_its_first_point == [_warning(endpoint)] != [first_warning]
    assert EndpointHealth.objects.get(endpoint=endpoint).warnings_sent == 1


def test_an_admin_enabling_the_endpoint_starts_a_new_spell_that_warns_again(tenant, recorded):
    endpoint = endpoint_for(tenant)
    start = timezone.now()
    recorded(endpoint, start)
    assert recorded(endpoint, start + 2.5 * D) == [_warning(endpoint)]  # 1 h and 2.5 d passed: one e-mail

    restart_failing_clock(endpoint)  # what enabling does
    again = start + 3 * D
    recorded(endpoint, again)

    assert recorded(endpoint, again + H) == [_warning(endpoint)]
    assert EndpointHealth.objects.get(endpoint=endpoint).failing_since == again


def test_a_warning_already_claimed_by_another_recorder_is_not_claimed_again(tenant):
    endpoint = endpoint_for(tenant)
    health = failing_for(endpoint, 2 * H)
    due = DueWarning(endpoint, health.failing_since, 1, H)

    first, second = execute_together([claim_statement(due), claim_statement(due)])

    assert first == [(endpoint.pk,)]
    assert second == []  # the other recorder finds it done and sends nothing
    health.refresh_from_db()
    assert (health.warned_spell, health.warnings_sent) == (health.failing_since, 1)


def test_a_healthy_endpoint_is_never_warned(tenant, recorded):
    endpoint = endpoint_for(tenant)
    start = timezone.now()

    notices = [recorded(endpoint, start + offset, status=200) for offset in (0 * H, 2 * H, 3 * D)]

    assert notices == [[], [], []]
    assert EndpointHealth.objects.get(endpoint=endpoint).warnings_sent == 0


# --- each endpoint's own period ---------------------------------------------------------------------------------


def test_an_endpoint_is_warned_and_disabled_at_its_own_period(tenant, recorded):
    short = endpoint_for(tenant, name="short")
    Endpoint.objects.filter(pk=short.pk).update(auto_disable_after_seconds=7200)  # points at 1 h and 1.8 h
    default = endpoint_for(tenant, name="default")
    start = timezone.now()
    for endpoint in (short, default):
        recorded(endpoint, start)

    at_1_8_h = recorded(short, start + 1.8 * H)
    at_2_h = recorded(short, start + 2 * H)
    default_at_2_h = recorded(default, start + 2 * H)

    short.refresh_from_db()
    default.refresh_from_db()
    assert at_1_8_h == [_warning(short)]
    assert short.enabled is False
    assert "(2 hours or more of failures)" in short.disabled_reason
    assert at_2_h == [(NOTIFY_DISABLED_TASK, [short.pk, short.disabled_reason])]
    assert default.enabled is True
    assert default_at_2_h == [_warning(default)]  # its first point (1 h) only


def test_the_deployments_period_is_named_in_the_disable_reason(tenant, recorded, settings):
    _with(settings, AUTO_DISABLE_AFTER_SECONDS=36 * 3600)
    endpoint = endpoint_for(tenant)
    start = timezone.now()
    recorded(endpoint, start)

    recorded(endpoint, start + 36 * H)

    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert "(1 day 12 hours or more of failures)" in endpoint.disabled_reason


# --- the e-mail -------------------------------------------------------------------------------------------------


def _failing_with_error(endpoint: Endpoint, duration: timedelta) -> EndpointHealth:
    health = failing_for(endpoint, duration)
    EndpointHealth.objects.filter(pk=health.pk).update(
        last_status_code=None, last_error="Connection refused by 93.184.216.34:443."
    )
    return health


def test_the_task_emails_the_tenants_admins_the_last_error_when_it_is_disabled_and_a_link(tenant, settings, mailoutbox):
    _with(settings, PUBLIC_URL="https://hooks.example.com")
    admins = sorted(MembershipFactory(tenant=tenant, role=Role.ADMIN).user.email for _ in range(2))
    MembershipFactory(tenant=tenant, role=Role.MANAGER)
    MembershipFactory(tenant=tenant, role=Role.USER)
    MembershipFactory(tenant=TenantFactory(), role=Role.ADMIN)
    endpoint = endpoint_for(tenant, name="orders")
    health = _failing_with_error(endpoint, 2 * D + 20 * H)

    assert notify_disable_warning_task(endpoint.pk, health.failing_since.isoformat()) == 1

    [mail] = mailoutbox
    assert sorted(mail.to) == admins
    assert mail.subject == "[webhookhub] Endpoint failing: orders will be disabled in 2 days 4 hours"
    assert f"failing since {health.failing_since:%Y-%m-%d %H:%M} UTC" in mail.body
    assert endpoint.url in mail.body
    assert "Last answer: Connection refused by 93.184.216.34:443." in mail.body
    disable_at = health.failing_since + 5 * D
    assert f"disabled automatically at {disable_at:%Y-%m-%d %H:%M} UTC (in 2 days 4 hours)" in mail.body
    assert f"Endpoint page: https://hooks.example.com{reverse('dashboard:endpoint', args=[endpoint.pk])}" in mail.body


def test_the_email_gives_the_status_with_the_error(tenant, mailoutbox):
    MembershipFactory(tenant=tenant, role=Role.ADMIN)
    endpoint = endpoint_for(tenant)
    health = failing_for(endpoint, 2 * H)
    EndpointHealth.objects.filter(pk=health.pk).update(last_status_code=503, last_error="HTTP 503")

    notify_disable_warning_task(endpoint.pk, health.failing_since.isoformat())

    [mail] = mailoutbox
    assert "Last answer: HTTP 503\n" in mail.body


def test_without_a_public_url_the_email_has_no_link(tenant, settings, mailoutbox):
    _with(settings, PUBLIC_URL="")
    MembershipFactory(tenant=tenant, role=Role.ADMIN)
    endpoint = endpoint_for(tenant)
    health = _failing_with_error(endpoint, 2 * H)

    assert notify_disable_warning_task(endpoint.pk, health.failing_since.isoformat()) == 1

    [mail] = mailoutbox
    assert "Endpoint page" not in mail.body and "http" not in mail.body.replace(endpoint.url, "")


def test_the_task_sends_nothing_once_the_spell_is_over(tenant, mailoutbox):
    MembershipFactory(tenant=tenant, role=Role.ADMIN)
    endpoint = endpoint_for(tenant)
    spell = _failing_with_error(endpoint, 2 * H).failing_since.isoformat()
    answered = endpoint_for(tenant)
    answered_spell = _failing_with_error(answered, 2 * H).failing_since.isoformat()
    EndpointHealth.objects.filter(endpoint=answered).update(failing_since=None)  # it answered meanwhile
    disabled = endpoint_for(tenant)
    disabled_spell = _failing_with_error(disabled, 2 * H).failing_since.isoformat()
    Endpoint.objects.filter(pk=disabled.pk).update(enabled=False)

    sent = [
        notify_disable_warning_task(answered.pk, answered_spell),
        notify_disable_warning_task(disabled.pk, disabled_spell),
        notify_disable_warning_task(endpoint.pk, (timezone.now() - 3 * H).isoformat()),  # an earlier spell
        notify_disable_warning_task("ep_gone", spell),
    ]

    assert sent == [0, 0, 0, 0]
    assert mailoutbox == []


def test_a_tenant_without_admins_gets_no_email(tenant, mailoutbox):
    MembershipFactory(tenant=tenant, role=Role.MANAGER)
    endpoint = endpoint_for(tenant)
    health = _failing_with_error(endpoint, 2 * H)

    assert notify_disable_warning_task(endpoint.pk, health.failing_since.isoformat()) == 0
    assert mailoutbox == []
