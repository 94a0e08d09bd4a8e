"""Each endpoint's one health record: what its latest requests said and since when it has been failing.

The recorder summarises each batch per endpoint and, in the transaction that inserts the
attempts, runs ``requests_statement`` (with its other writes, in one round trip): one upsert
moves every endpoint's record forward and returns its failing clock. ``disable_failing`` then
disables, in the same transaction, an endpoint failing for longer than its auto-disable period
(``auto_disable_period``: its own or the deployment's; its admins' e-mail is queued when it commits), and
``subscriptions.warnings`` warns them before that. ``record_requests`` moves the health and disables.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.db import connection
from django.utils import timezone

from ground.conf import setting
from ground.statements import Statement, execute_together
from subscriptions.models import Endpoint, EndpointHealth
from subscriptions.services import disable_endpoint

ERROR_KEPT_CHARS = 500
_COLUMNS = (
    "endpoint_id",
    "last_attempt_at",
    "last_status_code",
    "last_error",
    "failed_in_a_row",
    "last_success_at",
    "failing_since",
    "warnings_sent",  # inserted (0: a new row has warned of nothing), never updated here
)


@dataclass(frozen=True)
class RequestsSeen:
    """One endpoint's requests in one batch, oldest first, summarised."""

    endpoint: Endpoint
    last_attempt_at: datetime
    last_status_code: int | None
    last_error: str
    failures_after_last_success: int  # all of them when none succeeded
    last_success_at: datetime | None


def auto_disable_period(endpoint: Endpoint) -> timedelta:
    """How long ``endpoint`` may fail without a success before it is disabled: its own period, or the
    deployment's (``AUTO_DISABLE_AFTER_SECONDS``) when it has none.

    The bounds (``AUTO_DISABLE_MIN_SECONDS``/``MAX``) are checked when the value is saved, not here: narrowing
    them later does not change what an endpoint was promised.
    """
    own = endpoint.auto_disable_after_seconds
    return timedelta(seconds=setting("AUTO_DISABLE_AFTER_SECONDS") if own is None else own)


def in_words(period: timedelta, *, short: bool = False) -> str:
    """A period as people say it, to its two largest units (rounded to the nearer): "5 days", "2 days 4 hours",
    "1 hour 30 minutes"; ``short``: "2 d 4 h". Under a second: "0 seconds"."""
    seconds = max(0, round(period.total_seconds()))
    units = (("day", "d", 86400), ("hour", "h", 3600), ("minute", "min", 60), ("second", "s", 1))
    for index, (_, _, size) in enumerate(units[:-1]):
        if seconds >= size:
            step = units[index + 1][2]
            seconds = round(seconds / step) * step
            break
    parts: list[tuple[int, str, str]] = []
    for name, abbreviation, size in units:
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append((count, name, abbreviation))
    parts = [part for part in parts[:2] if part[0]] or [(0, "second", "s")]
    if short:
        return " ".join(f"{count} {abbreviation}" for count, _, abbreviation in parts)
    return " ".join(f"{count} {name}{'' if count == 1 else 's'}" for count, name, _ in parts)


def record_requests(seen: Sequence[RequestsSeen], *, now: datetime) -> list[Endpoint]:
    """Move these endpoints' health forward; disable those failing past the period; returns those disabled."""
    (clocks,) = execute_together([requests_statement(seen, now=now)])
    return disable_failing(seen, clocks, now=now)


def requests_statement(seen: Sequence[RequestsSeen], *, now: datetime) -> Statement | None:
    """The upsert that moves these endpoints' health forward, for the caller to run (with others, in one
    round trip); it returns each endpoint's failing clock, for ``disable_failing``, and the warnings already
    sent (the spell they belong to and how many), for ``subscriptions.warnings``: as rows of
    (endpoint id, failing_since, warned_spell, warnings_sent).

    ``now`` is when the batch is recorded: a failing endpoint's clock starts then if it is not running.
    Batches may be recorded out of order (a slow request finishes late): the latest attempt
    wins the "last" columns, and failures older than the recorded success move no streak.
    """
    if not seen:
        return None
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = []
    by_id = {summary.endpoint.pk: summary for summary in seen}
    for endpoint_id in sorted(by_id):  # the same order in every recorder: rows lock alike
        summary = by_id[endpoint_id]
        params += [
            endpoint_id,
            adapt(summary.last_attempt_at),
            summary.last_status_code,
            summary.last_error[:ERROR_KEPT_CHARS],
            summary.failures_after_last_success,
            adapt(summary.last_success_at),
            adapt(now) if summary.failures_after_last_success else None,  # the clock starts if not running
            0,
        ]
    return _upsert_sql(len(by_id)), params


def disable_failing(
    seen: Sequence[RequestsSeen], clocks: Sequence[tuple[Any, ...]], *, now: datetime
) -> list[Endpoint]:
    """Disable the endpoints whose failing clock (``requests_statement``'s rows) has run past their auto-disable
    period (``auto_disable_period``); returns those disabled."""
    by_id = {summary.endpoint.pk: summary for summary in seen}
    disabled = []
    for endpoint_id, failing_since, *_ in clocks:
        if failing_since is None:
            continue
        failing_since = as_datetime(failing_since)
        endpoint = by_id[endpoint_id].endpoint
        period = auto_disable_period(endpoint)
        # Not ``endpoint.enabled``: a rolled-back try of this transaction may have changed the object;
        # ``disable_endpoint`` asks the database.
        if now - failing_since >= period:
            reason = (
                f"No successful delivery since {failing_since:%Y-%m-%d %H:%M} UTC "
                f"({in_words(period)} or more of failures)."
            )
            if disable_endpoint(endpoint=endpoint, reason=reason):
                disabled.append(endpoint)
    return disabled


def as_datetime(value: Any) -> datetime:
    """RETURNING goes around Django's converters: SQLite hands back a naive datetime (UTC)."""
    if isinstance(value, datetime) and timezone.is_aware(value):  # PostgreSQL
        return value
    converted = connection.ops.convert_datetimefield_value(value, None, connection)  # type: ignore[attr-defined]
    assert isinstance(converted, datetime)
    return converted


@lru_cache(maxsize=32)
def _upsert_sql(rows: int) -> str:
    quote = connection.ops.quote_name
    t = quote(EndpointHealth._meta.db_table)
    streak, success, last, since = (
        quote(c) for c in ("failed_in_a_row", "last_success_at", "last_attempt_at", "failing_since")
    )
    row = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    newer = f"excluded.{last} >= {t}.{last}"
    newer_success = f"excluded.{success} IS NOT NULL AND ({t}.{success} IS NULL OR excluded.{success} >= {t}.{success})"
    older_than_success = f"{t}.{success} IS NOT NULL AND excluded.{last} < {t}.{success}"
    latest = ", ".join(
        f"{quote(c)} = CASE WHEN {newer} THEN excluded.{quote(c)} ELSE {t}.{quote(c)} END" for c in _COLUMNS[1:4]
    )
    return (
        f"INSERT INTO {t} ({', '.join(quote(c) for c in _COLUMNS)}) VALUES {', '.join([row] * rows)}"  # noqa: S608
        f" ON CONFLICT ({quote('endpoint_id')}) DO UPDATE SET {latest}"
        f", {streak} = CASE WHEN {newer_success} THEN excluded.{streak}"
        f" WHEN {older_than_success} THEN {t}.{streak}"
        f" ELSE {t}.{streak} + excluded.{streak} END"
        f", {since} = CASE WHEN {newer_success} THEN excluded.{since}"
        f" WHEN {older_than_success} THEN {t}.{since}"
        f" WHEN {t}.{since} IS NULL THEN excluded.{since}"
        f" WHEN excluded.{since} IS NOT NULL AND excluded.{since} < {t}.{since} THEN excluded.{since}"
        f" ELSE {t}.{since} END"
        f", {success} = CASE WHEN {newer_success} THEN excluded.{success} ELSE {t}.{success} END"
        f" RETURNING {quote('endpoint_id')}, {since}, {quote('warned_spell')}, {quote('warnings_sent')}"
    )
