"""Warnings before an auto-disable: the tenant's admins are e-mailed while an endpoint fails, at fixed points of
its failing spell, so that they can fix it before it is disabled.

The points (``warning_points``) are ``DISABLE_WARNING_AFTER_SECONDS`` into the spell and the
``DISABLE_WARNING_SHARES`` of the endpoint's auto-disable period, each once per spell. A spell is one run
of ``EndpointHealth.failing_since``: it ends when the endpoint succeeds or an admin enables it, and the
next one warns again from the first point.

The recorder calls ``warn_due`` in its transaction with the rows of ``health.requests_statement``, which
already carry the warnings sent (``warned_spell``, ``warnings_sent``): a healthy endpoint, or one with no
point passed or none left to warn about, costs nothing more. Only when a point is due does one conditional
UPDATE per endpoint decide, across every recorder process, who sends it (the one whose UPDATE returns the
row); the e-mail itself goes out from a Celery task queued when the transaction commits. Several points
passed at once (a recorder was down) make one e-mail, for the latest.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.mail import send_mail
from django.db import connection
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from ground.conf import setting
from ground.statements import Statement, execute_together
from subscriptions.health import RequestsSeen, as_datetime, auto_disable_period, in_words
from subscriptions.models import Endpoint, EndpointHealth
from subscriptions.selectors import tenant_admin_emails
from subscriptions.services import queue_disable_warning

logger = logging.getLogger(__name__)


def warning_points(period: timedelta) -> list[timedelta]:
    """How far into a failing spell the admins are warned, for an endpoint disabled after ``period``: after
    ``DISABLE_WARNING_AFTER_SECONDS`` (0: not) and at each of ``DISABLE_WARNING_SHARES`` of the period; points
    at or past the period (the disable's own e-mail says it then) and duplicates left out; in order."""
    after = setting("DISABLE_WARNING_AFTER_SECONDS")
    candidates = [timedelta(seconds=after)] if after > 0 else []
    candidates += [period * share for share in setting("DISABLE_WARNING_SHARES")]
    return sorted({point for point in candidates if timedelta(0) < point < period})


def points_passed(points: Sequence[timedelta], failing_for: timedelta) -> int:
    """How many of ``points`` an endpoint failing for ``failing_for`` has passed."""
    return sum(1 for point in points if point <= failing_for)


@dataclass(frozen=True)
class DueWarning:
    """A warning to send: the spell it belongs to (its ``failing_since``), and how many of the spell's points it
    covers (the last of them, ``point``, is the one the e-mail is for)."""

    endpoint: Endpoint
    failing_since: datetime
    points_covered: int
    point: timedelta


def due_warnings(seen: Sequence[RequestsSeen], clocks: Sequence[tuple[Any, ...]], *, now: datetime) -> list[DueWarning]:
    """The warnings that ``requests_statement``'s rows (``clocks``) say are due, deciding in memory: no database."""
    by_id = {summary.endpoint.pk: summary.endpoint for summary in seen}
    due = []
    for endpoint_id, spell, warned_spell, warnings_sent in clocks:
        if spell is None:  # not failing: the common case
            continue
        failing_since = as_datetime(spell)
        endpoint = by_id[endpoint_id]
        if not endpoint.enabled:  # a disabled endpoint's enable test failed: nothing will disable it
            continue
        period = auto_disable_period(endpoint)
        failing_for = now - failing_since
        if failing_for >= period:  # disabled now (``disable_failing``): its e-mail says so
            continue
        points = warning_points(period)
        passed = points_passed(points, failing_for)
        if not passed:
            continue
        # A spell that began after the warned one is a new one; an earlier start (a late batch moved the
        # clock back) is the same spell.
        same_spell = warned_spell is not None and as_datetime(warned_spell) >= failing_since
        if same_spell and warnings_sent >= passed:
            continue
        due.append(DueWarning(endpoint, failing_since, passed, points[passed - 1]))
    return due


def claim_statement(warning: DueWarning) -> Statement:
    """The conditional UPDATE that records ``warning`` as sent, RETURNING the endpoint's id only if it was not
    (in this spell, with these points): the recorder whose statement returns a row sends it. Concurrent
    recorders queue on the row's lock and then find it done."""
    quote = connection.ops.quote_name
    since, spell, sent = quote("failing_since"), quote("warned_spell"), quote("warnings_sent")
    sql = (
        f"UPDATE {quote(EndpointHealth._meta.db_table)} SET {spell} = {since}, {sent} = %s"  # noqa: S608
        f" WHERE {quote('endpoint_id')} = %s AND {since} = %s"
        f" AND ({spell} IS NULL OR {spell} < {since} OR {sent} < %s)"
        f" RETURNING {quote('endpoint_id')}"
    )
    covered = warning.points_covered
    spell_started = connection.ops.adapt_datetimefield_value(warning.failing_since)
    return sql, [covered, warning.endpoint.pk, spell_started, covered]


def warn_due(seen: Sequence[RequestsSeen], clocks: Sequence[tuple[Any, ...]], *, now: datetime) -> list[DueWarning]:
    """In the recorder's transaction, after ``disable_failing``: claim the warnings due (one round trip, only when
    some are) and queue their e-mails for when it commits; returns those claimed."""
    due = due_warnings(seen, clocks, now=now)
    if not due:
        return []
    claimed = [
        warning for warning, rows in zip(due, execute_together([claim_statement(w) for w in due]), strict=True) if rows
    ]
    for warning in claimed:
        logger.warning(
            "Endpoint %s failing since %s UTC: warning its admins (disabled in %s unless it answers).",
            warning.endpoint.pk,
            f"{warning.failing_since:%Y-%m-%d %H:%M}",
            in_words(auto_disable_period(warning.endpoint) - (now - warning.failing_since)),
        )
        queue_disable_warning(endpoint_id=warning.endpoint.pk, failing_since=warning.failing_since)
    return claimed


@dataclass(frozen=True)
class DisableOutlook:
    """When a failing endpoint will be disabled unless it answers, and when its admins are next warned."""

    failing_since: datetime
    period: timedelta
    disable_at: datetime
    disabled_in: timedelta
    next_warning_at: datetime | None

    @property
    def disabled_in_words(self) -> str:
        """ "2 d 4 h" """
        return in_words(self.disabled_in, short=True)

    @property
    def period_in_words(self) -> str:
        return in_words(self.period)


def outlook(endpoint: Endpoint, health: EndpointHealth | None, *, now: datetime) -> DisableOutlook | None:
    """For an enabled endpoint whose failing clock runs; None otherwise."""
    if not endpoint.enabled or health is None or health.failing_since is None:
        return None
    since = health.failing_since
    period = auto_disable_period(endpoint)
    next_warning = next((since + point for point in warning_points(period) if since + point > now), None)
    return DisableOutlook(
        failing_since=since,
        period=period,
        disable_at=since + period,
        disabled_in=max(timedelta(0), since + period - now),
        next_warning_at=next_warning,
    )


def endpoint_page_url(endpoint: Endpoint) -> str:
    """The endpoint's dashboard page at the deployment's public address (``PUBLIC_URL``); "" when that is not
    set (a link to localhost from a production server would lead nowhere)."""
    base = setting("PUBLIC_URL").rstrip("/")
    if not base:
        return ""
    try:
        path = reverse("dashboard:endpoint", args=[endpoint.pk])
    except NoReverseMatch:  # a deployment without the dashboard
        return ""
    return base + path


def notify_disable_warning(*, endpoint: Endpoint, failing_since: datetime, now: datetime | None = None) -> int:
    """E-mail the tenant's admins that ``endpoint`` has been failing since ``failing_since`` and when it will be
    disabled; returns how many messages went out. Nothing when the spell is over by now (it answered, or an
    admin enabled or disabled it meanwhile): the warning would be wrong."""
    now = now or timezone.now()
    health = EndpointHealth.objects.filter(endpoint=endpoint).first()
    if not endpoint.enabled or health is None or health.failing_since != failing_since:
        return 0
    recipients = tenant_admin_emails(endpoint.tenant)
    if not recipients:
        return 0
    period = auto_disable_period(endpoint)
    disable_at = failing_since + period
    remaining = in_words(max(timedelta(0), disable_at - now))
    answer = health.last_error or "no answer"
    if health.last_status_code and answer != f"HTTP {health.last_status_code}":
        answer = f"HTTP {health.last_status_code}" + (f" ({health.last_error})" if health.last_error else "")
    link = endpoint_page_url(endpoint)
    name = endpoint.name or endpoint.url
    lines = [
        f"The webhook endpoint {name} of {endpoint.tenant} has been failing since "
        f"{failing_since:%Y-%m-%d %H:%M} UTC ({in_words(now - failing_since)}): no request to it has succeeded since.",
        "",
        f"URL: {endpoint.url}",
        f"Endpoint id: {endpoint.pk}",
        f"Last answer: {answer}",
        f"Last attempt: {health.last_attempt_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"It will be disabled automatically at {disable_at:%Y-%m-%d %H:%M} UTC (in {remaining}) unless it answers "
        "with a 2xx before then. Its deliveries are retried on their schedule meanwhile; once it is disabled, it "
        "receives no new events until an admin enables it again.",
    ]
    if link:
        lines += ["", f"Endpoint page: {link}"]
    return send_mail(
        subject=f"[webhookhub] Endpoint failing: {name} will be disabled in {remaining}",
        message="\n".join(lines),
        from_email=None,
        recipient_list=recipients,
    )
