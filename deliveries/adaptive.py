"""Adaptive concurrency: how many of an endpoint's requests its owner lets open at once, learnt from the answers.

Pure and in memory (the owner's lane holds one ``ConcurrencyLimit`` per endpoint); the owner writes the
limit to the endpoint's schedule row, so the next owner starts from it. Additive increase, multiplicative
decrease, inside the endpoint's ``max_in_flight`` (the ceiling):

- **Start low**: ``START_LIMIT`` at once, then one more per fast success (doubling per round trip) until the
  first sign of trouble.
- **Trouble** is a 429 or 503, a timeout, a refused connection, or answers much slower than the endpoint's own
  recent baseline. It halves the limit (never below 1) once per round: answers to requests that started
  before the cut do not cut again. It remembers how many requests were open when the trouble came (the
  level), and stops ramping fast for good (until an admin enables the endpoint again).
- **Grow back** one per fast success up to just below that level (the successes of requests that were open at
  the cut count too: the receiver took that many), then probe it carefully: one more only after
  ``PROBE_WINDOWS`` windows of fast successes. If the probe holds, the level is forgotten and the
  limit grows one per window (a window: as many fast successes as the limit) up to the ceiling.
- Only a limit in use grows: a success counts when its request started with the limit's worth open.
"""

from dataclasses import dataclass
from enum import StrEnum

START_LIMIT = 2
PROBE_WINDOWS = 32  # just below the level that last brought trouble, one more after this many windows
LATENCY_FACTOR = 3.0  # answers this many times slower than the baseline...
LATENCY_MARGIN_MS = 50.0  # ... and at least this much slower are slow: trouble
BASELINE_WEIGHT = 0.05  # of a fast answer in the baseline (a moving average)
DRIFT_WEIGHT = 0.01  # of a slow answer in the baseline, so a receiver that became slower for good is learnt
RECENT_WEIGHT = 0.25  # of an answer in the recent latency (one stray slow answer is not trouble)


class Trouble(StrEnum):
    """What cut the limit (shown as "limited by: 429s at 7")."""

    TOO_MANY = "429"
    UNAVAILABLE = "503"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    LATENCY = "latency"


@dataclass(frozen=True)
class Answer:
    """What one request that was made says: its status (None when no answer came), why none came
    (``deliveries.http.HttpResult.failure``), and how long it took."""

    status_code: int | None
    failure: str
    duration_ms: int


@dataclass(frozen=True)
class Ticket:
    """Taken when a request starts: the limit's round then, how many were open with it, and the limit."""

    round: int
    open: int
    limit: int


class ConcurrencyLimit:
    """One endpoint's limit of requests open at once, moved by each answer (see the module). Not thread-safe:
    the owner's lanes call it under their lock."""

    def __init__(
        self, *, ceiling: int, limit: int | None = None, limited_by: str = "", limited_at: int | None = None
    ) -> None:
        """``limit`` etc.: as the last owner left them (None: never learnt, so it starts at ``START_LIMIT``). With
        no trouble on record it keeps ramping one per fast success, as the last owner would have."""
        self.ceiling = max(1, ceiling)
        self.slow_start = not limited_by
        self.limit = max(1, min(self.ceiling, limit if limit is not None else START_LIMIT))
        self.limited_by = limited_by
        self.limited_at = limited_at if limited_by else None
        self.baseline_ms: float | None = None
        self.recent_ms: float | None = None
        self._round = 0  # moves at every cut
        self._successes = 0  # fast successes toward the next step up

    @property
    def state(self) -> tuple[int, str, int | None]:
        """What is written to the schedule: (limit, limited_by, limited_at)."""
        return self.limit, self.limited_by, self.limited_at

    def set_ceiling(self, ceiling: int) -> None:
        """The endpoint's ``max_in_flight`` as just read (an admin may have changed it). A level of trouble above
        a lowered ceiling can no longer be reached: it is forgotten."""
        self.ceiling = max(1, ceiling)
        self.limit = min(self.limit, self.ceiling)
        if self.limited_at is not None and self.limited_at > self.ceiling:
            self.limited_by, self.limited_at = "", None

    def started(self, open_now: int) -> Ticket:
        """A request starts, ``open_now`` open with it."""
        return Ticket(self._round, open_now, self.limit)

    def answered(self, ticket: Ticket, answer: Answer, open_now: int = 0) -> None:
        """A request is answered, ``open_now`` open (itself included). One started before the last cut belongs to
        the round that cut: its trouble was dealt with (it does not cut again, nor move the latency the new round
        is judged by), and its success, if fast, only grows the limit back to below the level of the trouble.

        Trouble is put at the most that were open when the request started or answered: requests started one
        after the other by different threads may reach the receiver in the other order, so the one answered
        429 may have started with fewer open than the receiver found."""
        this_round = ticket.round == self._round
        trouble = self._trouble(answer, judge_latency=this_round)
        if trouble is not None:
            if this_round:
                self._cut(trouble, max(ticket.open, open_now))
            return
        if answer.status_code is None or not 200 <= answer.status_code < 300:
            return  # an answer that says nothing of load (a 4xx, a 500, a DNS failure)
        if this_round:
            if ticket.open >= ticket.limit:
                self._successes += 1
                if self._successes >= self._window():
                    self._grow()
        elif self._regrowing() and not self._slower_than_usual(answer.duration_ms):
            self._grow()  # the receiver took this many at the level before the cut, fast: back up to below the trouble

    # --- the decisions -----------------------------------------------------------------------------------
    def _trouble(self, answer: Answer, *, judge_latency: bool) -> Trouble | None:
        status = answer.status_code
        if status == 429:
            return Trouble.TOO_MANY
        if status == 503:
            return Trouble.UNAVAILABLE
        if status is None:
            return Trouble(answer.failure) if answer.failure in (Trouble.TIMEOUT, Trouble.REFUSED) else None
        if not 200 <= status < 300:
            return None
        return Trouble.LATENCY if judge_latency and self._slow(answer.duration_ms) else None

    def _slow(self, duration_ms: float) -> bool:
        """Move the baseline and the recent latency by this success; whether answers have become slow."""
        if self.baseline_ms is None or self.recent_ms is None:
            self.baseline_ms = self.recent_ms = float(duration_ms)
            return False
        self.recent_ms += RECENT_WEIGHT * (duration_ms - self.recent_ms)
        slow = self.recent_ms > max(self.baseline_ms * LATENCY_FACTOR, self.baseline_ms + LATENCY_MARGIN_MS)
        self.baseline_ms += (DRIFT_WEIGHT if slow else BASELINE_WEIGHT) * (duration_ms - self.baseline_ms)
        return slow

    def _slower_than_usual(self, duration_ms: float) -> bool:
        """Whether this one answer is well above the baseline (judged alone, moving nothing)."""
        baseline = self.baseline_ms
        return baseline is not None and duration_ms > max(baseline * LATENCY_FACTOR, baseline + LATENCY_MARGIN_MS)

    def _regrowing(self) -> bool:
        """Below the level just under the one that brought trouble (where it grows back one per fast success)."""
        return self.limited_at is not None and self.limit < self.limited_at - 1

    def _window(self) -> int:
        """Fast successes needed for one more."""
        if self.slow_start or self._regrowing():
            return 1
        if self.limited_at is not None and self.limit == self.limited_at - 1:
            return self.limit * PROBE_WINDOWS  # the next step is where the trouble came: probe it rarely
        return self.limit

    def _grow(self) -> None:
        self._successes = 0
        if self.limited_at is not None and self.limit >= self.limited_at:
            self.limited_by, self.limited_at = "", None  # the level that brought trouble holds now
        self.limit = min(self.ceiling, self.limit + 1)

    def _cut(self, trouble: Trouble, open_then: int) -> None:
        self.slow_start = False
        self._round += 1
        self._successes = 0
        self.limited_by, self.limited_at = trouble.value, max(1, open_then)
        self.limit = max(1, self.limit // 2)
        if trouble is Trouble.LATENCY:
            self.recent_ms = self.baseline_ms  # judge the answers at the new limit afresh
