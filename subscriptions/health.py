"""Each endpoint's one health record: what its latest requests said and since when it has been failing.

The recorder summarises each batch per endpoint and, in the transaction that inserts the
attempts, runs ``requests_statement`` (with its other writes, in one round trip): one upsert
moves every endpoint's record forward and returns its failing clock. ``disable_failing`` then
disables, in the same transaction, an endpoint failing for longer than the auto-disable period
(its admins' e-mail is queued when it commits). ``record_requests`` does both.
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


def record_requests(seen: Sequence[RequestsSeen], *, now: datetime) -> list[Endpoint]:
    """Move these endpoints' health forward; disable those failing past the period; returns those disabled."""
    (clocks,) = execute_together([requests_statement(seen, now=now)])
    return disable_failing(seen, clocks, now=now)


def requests_statement(seen: Sequence[RequestsSeen], *, now: datetime) -> Statement | None:
    """The upsert that moves these endpoints' health forward, for the caller to run (with others, in one
    round trip); it returns each endpoint's failing clock, for ``disable_failing``.

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
        ]
    return _upsert_sql(len(by_id)), params


def disable_failing(
    seen: Sequence[RequestsSeen], clocks: Sequence[tuple[str, Any]], *, now: datetime
) -> list[Endpoint]:
    """Disable the endpoints whose failing clock (``requests_statement``'s rows) has run past the auto-disable
    period; returns those disabled."""
    by_id = {summary.endpoint.pk: summary for summary in seen}
    period = timedelta(seconds=setting("AUTO_DISABLE_AFTER_SECONDS"))
    disabled = []
    for endpoint_id, failing_since in clocks:
        if failing_since is None:
            continue
        failing_since = _as_datetime(failing_since)
        endpoint = by_id[endpoint_id].endpoint
        # Not ``endpoint.enabled``: a rolled-back try of this transaction may have changed the object;
        # ``disable_endpoint`` asks the database.
        if now - failing_since >= period:
            reason = (
                f"No successful delivery since {failing_since:%Y-%m-%d %H:%M} UTC "
                f"({period.days} days or more of failures)."
            )
            if disable_endpoint(endpoint=endpoint, reason=reason):
                disabled.append(endpoint)
    return disabled


def _as_datetime(value: Any) -> datetime:
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
        f" RETURNING {quote('endpoint_id')}, {since}"
    )
