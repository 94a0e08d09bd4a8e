"""Recording what the sends said: the one recording transaction, and what it writes.

A batch of results is first *decided* (``decide_results``: pure, no database): each attempt's row,
its retry decision and its delivery's new state are fixed once. Then ``write`` runs the recording
transaction, each of its writes named where it is made: the delivery states (where the lease
still holds, which also says which results are still this worker's), the attempts, a 410's
disable, the dashboard's rollups and /metrics' totals (``deliveries.numbers.tallying``), each
endpoint's health and auto-disable (``subscriptions.health``), and the pauses and circuits the
answers call for (``deliveries.services.circuits``), all or nothing.

Writing the same ``Recorded`` again after a failed transaction (the database went away
mid-batch, and the recorder keeps the batch until it is back) writes exactly what one
successful write would have: nothing in memory is changed by a write that did not commit.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from deliveries.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus
from deliveries.numbers.tallying import attempts_statement, rollups_statement, tally
from deliveries.pacing import Signal, SignalAt
from deliveries.retry_policy import Decision, decide, schedule_for
from deliveries.services.circuits import health_statement, health_unmoved_by_success, record_signals, signals_of
from deliveries.services.sending import SendResult, retry_after, signal_of_sent
from ground import raw_insert
from ground.crypto import mask
from ground.db import bound_cursor
from ground.statements import CheckFailed, check, execute_atomically, execute_together
from subscriptions.health import RequestsSeen, disable_failing, requests_statement
from subscriptions.services import disable_endpoint
from subscriptions.warnings import warn_due

_DELIVERY_FIELDS = {field.attname: field for field in Delivery._meta.concrete_fields}
_ATTEMPT_COLUMNS = [field.attname for field in Attempt._meta.concrete_fields if not field.primary_key]
logger = logging.getLogger(__name__)
attempt_logger = logging.getLogger("webhookhub.attempts")  # one line per recorded attempt, at INFO
ONE_TRIP_MAX = 8  # a batch of at most this many successes is written in one round trip (see _written_in_one_trip)


@dataclass(frozen=True)
class DeliveryState:
    """The columns of a delivery that recording sets."""

    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    lease_until: datetime | None
    last_status_code: int | None
    last_error: str
    completed_at: datetime | None


@dataclass(frozen=True)
class Outcome:
    """One result, decided: the attempt row to insert, what happens next, and the delivery's new state."""

    sent: SendResult
    attempt: Attempt
    decision: Decision
    state: DeliveryState


@dataclass(frozen=True)
class Recorded:
    """A batch of results and cancellations as the recording transaction will write it."""

    outcomes: list[Outcome] = field(default_factory=list)
    cancellations: list[tuple[Delivery, DeliveryState]] = field(default_factory=list)
    decided_at: datetime = field(default_factory=timezone.now)

    def __len__(self) -> int:
        return len(self.outcomes) + len(self.cancellations)

    @property
    def deliveries(self) -> list[Delivery]:
        return [outcome.sent.delivery for outcome in self.outcomes] + [d for d, _ in self.cancellations]

    def one_by_one(self) -> Iterator["Recorded"]:
        """Each result and cancellation on its own (so one bad row does not cost the others their record)."""
        for outcome in self.outcomes:
            yield Recorded([outcome], [], self.decided_at)
        for cancellation in self.cancellations:
            yield Recorded([], [cancellation], self.decided_at)


def decide_results(sent: list[SendResult], cancelled: list[Delivery], config: dict[str, Any]) -> Recorded:
    """Fix what a batch will write, once: retries of its write must not decide again."""
    now = timezone.now()
    return Recorded(
        outcomes=[_outcome(item, now, config) for item in sent],
        cancellations=[(delivery, _cancelled(delivery, now)) for delivery in cancelled],
        decided_at=now,
    )


def write_results(sent: list[SendResult], cancelled: list[Delivery], config: dict[str, Any]) -> list[str]:
    """Decide and write in one go (a caller that does not retry); returns the outcome of each ``sent``."""
    recorded = decide_results(sent, cancelled, config)
    write(recorded)
    return [outcome.decision.outcome for outcome in recorded.outcomes]


def write(recorded: Recorded) -> None:
    """The recording transaction. Results whose lease another worker took meanwhile are left out."""
    if _written_in_one_trip(recorded):
        kept, written = recorded.outcomes, len(recorded)
    else:
        kept, written = _write_step_by_step(recorded)
    dropped = len(recorded) - written
    if dropped:
        logger.warning("%d result(s) not recorded: their lease ran out before the result came back.", dropped)
    if attempt_logger.isEnabledFor(logging.WARNING):
        for outcome in kept:
            _log_attempt(outcome)


def _write_step_by_step(recorded: Recorded) -> tuple[list[Outcome], int]:
    """Any batch: the writes in order, each deciding on what the last said; the outcomes recorded, and how many
    results and cancellations were written."""
    now = recorded.decided_at
    with transaction.atomic():
        # First the states, only of deliveries whose lease is still the one they were claimed with (so these
        # rows are locked until commit): that one statement says which results are still this worker's.
        owned: set[int] = set()
        for sql, params, _ in _state_statements(
            [(outcome.sent.delivery, outcome.state) for outcome in recorded.outcomes] + recorded.cancellations
        ):
            with bound_cursor() as cursor:
                cursor.execute(sql, params)
                owned.update(row[0] for row in cursor.fetchall())
        kept = [outcome for outcome in recorded.outcomes if outcome.sent.delivery.pk in owned]
        attempts = [outcome.attempt for outcome in kept]
        if kept:
            raw_insert.insert(attempts, _ATTEMPT_COLUMNS)
            _disable_gone(kept)  # before the health: a 410's reason wins over auto-disable's
            with_tenants = [(outcome.sent.delivery.endpoint.tenant_id, outcome.attempt) for outcome in kept]
            seen = requests_seen([attempt for attempt in attempts if attempt.request_made])
            signals = _signals(kept)
            # In one round trip: the endpoints' scheduling health as it stands, the dashboard's numbers and
            # /metrics', and each endpoint's health (the failing streak and clock).
            schedules, _, _, clocks = execute_together(
                [
                    health_statement(list(signals)),
                    rollups_statement(tally(with_tenants)),
                    attempts_statement(with_tenants),
                    requests_statement(seen, now=now),
                ]
            )
            disable_failing(seen, clocks, now=now)  # auto-disable past the period
            warn_due(seen, clocks, now=now)  # warn before it (a round trip only when a warning is due)
            # Pauses and circuits, with the slots these free: a circuit opens before anyone can claim them for a
            # dead endpoint.
            record_signals(signals, now=now, current=schedules)
    return kept, len(owned)


def _written_in_one_trip(recorded: Recorded) -> bool:
    """A few successes (the batches of low rates, where round trips cost the most) are written in one round trip,
    all or nothing, on PostgreSQL: what the step-by-step path would decide between its writes is checked
    instead (every lease still held; no endpoint whose scheduling health a success would move, i.e. with
    failures in a row or an open circuit). False, having written nothing, when that does not hold (or the
    batch is not such a batch): the step-by-step path then writes it."""
    outcomes = recorded.outcomes
    if (
        connection.vendor != "postgresql"
        or recorded.cancellations
        or not 0 < len(outcomes) <= ONE_TRIP_MAX
        or not all(_plain_success(outcome) for outcome in outcomes)
    ):
        return False
    now = recorded.decided_at
    attempts = [outcome.attempt for outcome in outcomes]
    with_tenants = [(outcome.sent.delivery.endpoint.tenant_id, outcome.attempt) for outcome in outcomes]
    leases_held = [
        check("(SELECT count(*) FROM s) = %s", [*params, count], "a lease was lost", with_=f"WITH s AS ({sql})")
        for sql, params, count in _state_statements([(outcome.sent.delivery, outcome.state) for outcome in outcomes])
    ]
    try:
        execute_atomically(
            [
                *leases_held,
                health_unmoved_by_success(list({outcome.sent.delivery.endpoint_id for outcome in outcomes})),
                raw_insert.insert_statement(attempts, _ATTEMPT_COLUMNS),
                rollups_statement(tally(with_tenants)),
                attempts_statement(with_tenants),
                requests_statement(requests_seen(attempts), now=now),  # all succeeded: no failing clock to act on
            ]
        )
    except CheckFailed:
        return False
    return True


def _plain_success(outcome: Outcome) -> bool:
    return (
        outcome.sent.request_made
        and outcome.decision.outcome == AttemptOutcome.SUCCESS
        and signal_of_sent(outcome.sent) is Signal.UP
        and not outcome.decision.disable_endpoint_reason
    )


def _text(value: str) -> str:
    """Text a database accepts (PostgreSQL rejects NUL in text and jsonb)."""
    return value.replace("\x00", "\ufffd")


def _response_body(sent: SendResult, config: dict[str, Any]) -> str:
    """The start of the answer, as the attempt log keeps it; a receiver that echoes the request (error pages,
    inspection services) does not put a Heymarket verification token in the log."""
    body = _text(sent.result.body[: config["STORED_RESPONSE_BYTES"]].decode("utf-8", errors="replace"))
    token = sent.delivery.endpoint.verification_token
    return body.replace(token, mask(token)) if token and token in body else body


def _outcome(sent: SendResult, now: datetime, config: dict[str, Any]) -> Outcome:
    """Decide what happens next and build the Attempt row and the delivery's new state (the delivery is untouched)."""
    delivery, result = sent.delivery, sent.result
    number = delivery.attempt_count + 1
    decision = decide(
        attempt_number=number,
        status_code=result.status_code,
        retry_after=retry_after(sent),
        now=now,
        schedule=schedule_for(delivery.endpoint.retry_schedule, config),  # the endpoint's own, or the deployment's
        jitter=config["RETRY_JITTER"],
        retry_after_cap=config["RETRY_AFTER_MAX_SECONDS"],
    )
    error = _text(result.error) or ("" if decision.outcome == AttemptOutcome.SUCCESS else f"HTTP {result.status_code}")
    retrying = decision.outcome == AttemptOutcome.RETRY
    state = DeliveryState(
        status=(
            DeliveryStatus.PENDING
            if retrying
            else DeliveryStatus.SUCCEEDED
            if decision.outcome == AttemptOutcome.SUCCESS
            else DeliveryStatus.FAILED
        ),
        attempt_count=number,
        next_attempt_at=decision.next_attempt_at if retrying else None,
        lease_until=None,
        last_status_code=result.status_code,
        last_error=error,
        completed_at=None if retrying else now,
    )
    attempt = Attempt(
        delivery=delivery,
        number=number,
        started_at=sent.started_at,
        duration_ms=result.duration_ms,
        request_headers=sent.masked_headers,
        status_code=result.status_code,
        response_headers={_text(name): _text(value) for name, value in result.headers.items()},
        response_body=_response_body(sent, config),
        error=error,
        outcome=decision.outcome,
        request_made=sent.request_made,
    )
    return Outcome(sent, attempt, decision, state)


def _cancelled(delivery: Delivery, now: datetime) -> DeliveryState:
    """A delivery claimed for an endpoint that was disabled meanwhile: it is cancelled, with no attempt."""
    return DeliveryState(
        status=DeliveryStatus.CANCELLED,
        attempt_count=delivery.attempt_count,
        next_attempt_at=None,
        lease_until=None,
        last_status_code=delivery.last_status_code,
        last_error=f"Endpoint disabled: {delivery.endpoint.disabled_reason or 'by an admin'}",
        completed_at=now,
    )


def _state_statements(states: list[tuple[Delivery, DeliveryState]]) -> list[tuple[str, list[Any], int]]:
    """The UPDATEs that write each delivery's new state where its lease is still the one it was claimed with,
    each RETURNING the ids it wrote, with how many it is for.

    A result that comes back after its lease ran out (and another worker may have taken the
    delivery) must not overwrite newer state. One UPDATE per distinct new state (a batch of
    successes is one statement).
    """
    table = connection.ops.quote_name(Delivery._meta.db_table)
    statements = []
    for state, group in groupby(sorted(states, key=lambda pair: repr(pair[1])), key=lambda pair: pair[1]):
        by_lease: dict[Any, list[int]] = {}
        for delivery, _ in group:
            by_lease.setdefault(getattr(delivery, "claimed_lease", None), []).append(delivery.pk)
        fields = [_DELIVERY_FIELDS[name] for name in vars(state)]
        assignments = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in fields)
        params: list[Any] = [field.get_db_prep_save(getattr(state, field.attname), connection) for field in fields]
        held = []
        for lease, ids in by_lease.items():
            held.append(
                f"(id IN ({', '.join(['%s'] * len(ids))}) AND lease_until {'IS NULL' if lease is None else '= %s'})"
            )
            params += [*ids] if lease is None else [*ids, connection.ops.adapt_datetimefield_value(lease)]
        sql = f"UPDATE {table} SET {assignments} WHERE {' OR '.join(held)} RETURNING id"  # noqa: S608
        statements.append((sql, params, sum(len(ids) for ids in by_lease.values())))
    return statements


def _disable_gone(outcomes: list[Outcome]) -> None:
    """An endpoint that answered 410 Gone asked to stop receiving: disable it with that reason."""
    gone = {
        outcome.sent.delivery.endpoint_id: (outcome.sent.delivery.endpoint, outcome.decision.disable_endpoint_reason)
        for outcome in outcomes
        if outcome.sent.request_made and outcome.decision.disable_endpoint_reason
    }
    for endpoint, reason in gone.values():
        disable_endpoint(endpoint=endpoint, reason=reason)


def _signals(outcomes: list[Outcome]) -> dict[str, list[SignalAt]]:
    """What the attempts that made a request say about their endpoints (Retry-After, failure, answer)."""
    return signals_of(
        (
            outcome.sent.delivery.endpoint_id,
            outcome.sent.result.status_code,
            retry_after(outcome.sent) is not None,
            outcome.decision.next_attempt_at,
        )
        for outcome in outcomes
        if outcome.sent.request_made
    )


def requests_seen(attempts: list[Attempt]) -> list[RequestsSeen]:
    """What attempts that made a request tell each endpoint's health: per endpoint, the latest attempt, the last
    success and the failures after it."""
    by_endpoint: dict[str, list[Attempt]] = {}
    for attempt in sorted(attempts, key=lambda a: (a.started_at, a.number)):
        by_endpoint.setdefault(attempt.delivery.endpoint_id, []).append(attempt)
    seen = []
    for ordered in by_endpoint.values():
        last = ordered[-1]
        successes = [i for i, attempt in enumerate(ordered) if attempt.outcome == AttemptOutcome.SUCCESS]
        seen.append(
            RequestsSeen(
                endpoint=last.delivery.endpoint,
                last_attempt_at=last.started_at,
                last_status_code=last.status_code,
                last_error=last.error,
                failures_after_last_success=len(ordered) - successes[-1] - 1 if successes else len(ordered),
                last_success_at=ordered[successes[-1]].started_at if successes else None,
            )
        )
    return seen


def _log_attempt(outcome: Outcome) -> None:
    """One line per attempt: INFO when it succeeded, WARNING (with what happens next) when not.

    Ids, the endpoint's name, status or error, duration and outcome; never a URL, header, body or secret.
    """
    delivery, attempt, decision = outcome.sent.delivery, outcome.attempt, outcome.decision
    endpoint = f"{delivery.endpoint_id} ({delivery.endpoint.name})" if delivery.endpoint.name else delivery.endpoint_id
    answer = attempt.error.rstrip(".")
    if attempt.status_code:
        answer = f"HTTP {attempt.status_code}"
        answer += f" ({attempt.error.rstrip('.')})" if attempt.error and attempt.error != answer else ""
    if decision.outcome == AttemptOutcome.SUCCESS:
        level, what = logging.INFO, f"{answer} in {attempt.duration_ms} ms."
    elif decision.outcome == AttemptOutcome.RETRY and decision.next_attempt_at is not None:
        wait = max(0, round((decision.next_attempt_at - timezone.now()).total_seconds()))
        level = logging.WARNING
        what = (
            f"failed in {attempt.duration_ms} ms: {answer}; attempt {attempt.number + 1} at "
            f"{decision.next_attempt_at:%H:%M:%S} UTC (in {wait} s)."
        )
    else:
        level, what = logging.WARNING, f"failed for good in {attempt.duration_ms} ms: {answer}."
    attempt_logger.log(
        level,
        "Delivery %s attempt %d to %s: %s",
        delivery.pk,
        attempt.number,
        endpoint,
        what,
        extra={
            "event_id": delivery.event_id,
            "delivery_id": delivery.pk,
            "endpoint_id": delivery.endpoint_id,
            "tenant_id": delivery.event.tenant_id,
            "attempt": attempt.number,
            "status_code": attempt.status_code,
            "duration_ms": attempt.duration_ms,
            "outcome": str(decision.outcome),
            "error": attempt.error,
        },
    )
