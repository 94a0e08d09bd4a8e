"""The worker's lanes pace each endpoint it owns, on a fake clock: no database, no threads, no sleeps."""

from datetime import UTC, datetime, timedelta

from deliveries.adaptive import START_LIMIT, Answer
from deliveries.models import Delivery
from deliveries.pacing import CIRCUIT_THRESHOLD, Signal
from deliveries.services.claims import EndpointClaim
from deliveries.services.sending import Batch
from deliveries.worker.lanes import IDLE_LANE_SECONDS, Lanes
from subscriptions.models import Endpoint

WALL = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _endpoint(
    pk: str, *, max_in_flight: int = 8, rate_limit_per_s: int | None = None, adaptive: bool = False
) -> Endpoint:
    """Static limits unless ``adaptive`` (the pacing tests hold the ceiling; adaptive concurrency has its own)."""
    return Endpoint(
        id=pk, max_in_flight=max_in_flight, rate_limit_per_s=rate_limit_per_s, adaptive_concurrency=adaptive
    )


_next_id = iter(range(1, 10_000))


def _claim(
    lanes: Lanes,
    endpoint: Endpoint,
    count: int,
    *,
    down_in_a_row: int = 0,
    next_start_at=None,
    concurrency: tuple[int | None, str, int | None] = (None, "", None),
):
    deliveries = [Delivery(id=next(_next_id), endpoint_id=endpoint.pk) for _ in range(count)]
    claim = EndpointClaim(endpoint, [d.pk for d in deliveries], next_start_at, down_in_a_row, [], concurrency)
    starts = lanes.add([claim], Batch(to_send=deliveries, cancelled=[], secrets={endpoint.pk: []}), wall_now=WALL)
    return deliveries, [delivery.pk for delivery, _batch in starts]


def test_an_endpoint_starts_at_most_its_max_in_flight_and_the_next_when_one_is_answered():
    lanes = Lanes(senders=64, clock=Clock())
    deliveries, started = _claim(lanes, _endpoint("ep_a", max_in_flight=2), 5)

    assert started == [deliveries[0].pk, deliveries[1].pk]
    assert lanes.held_by_endpoint() == ({"ep_a": 5}, set())
    assert [d.pk for d, _ in lanes.answered(deliveries[0], Signal.UP)] == [deliveries[2].pk]
    assert lanes.held_by_endpoint() == ({"ep_a": 4}, set())


def test_the_rate_limit_spaces_the_starts_on_the_clock():
    clock = Clock()
    lanes = Lanes(senders=64, clock=clock)
    deliveries, started = _claim(lanes, _endpoint("ep_a", rate_limit_per_s=4), 3)

    assert started == [deliveries[0].pk]
    assert lanes.next_start_at == 100.25
    clock.now = 100.2
    assert lanes.starts_due() == []
    clock.now = 100.25
    assert [d.pk for d, _ in lanes.starts_due()] == [deliveries[1].pk]
    assert lanes.next_start_at == 100.5


def test_a_new_owner_goes_on_at_the_pace_the_last_owner_left():
    lanes = Lanes(senders=64, clock=Clock())
    _, started = _claim(lanes, _endpoint("ep_a", rate_limit_per_s=1), 1, next_start_at=WALL + timedelta(seconds=0.5))

    assert started == []
    assert lanes.next_start_at == 100.5


def test_lanes_take_turns_for_the_sender_threads():
    lanes = Lanes(senders=3, clock=Clock())
    first, started_first = _claim(lanes, _endpoint("ep_a"), 3)
    second, started_second = _claim(lanes, _endpoint("ep_b"), 3)

    assert started_first == [d.pk for d in first]  # every thread was free
    assert started_second == []
    # Each answer frees a thread; the waiting lane gets it.
    assert [d.pk for d, _ in lanes.answered(first[0], Signal.UP)] == [second[0].pk]


def test_the_answer_that_opens_the_circuit_stops_the_lane_and_hands_its_waiting_deliveries_back():
    lanes = Lanes(senders=64, clock=Clock())
    endpoint = _endpoint("ep_a", max_in_flight=1)
    deliveries, _ = _claim(lanes, endpoint, 4, down_in_a_row=CIRCUIT_THRESHOLD - 1)

    assert lanes.answered(deliveries[0], Signal.DOWN) == []

    assert [d.pk for d in lanes.take_unsent()] == [d.pk for d in deliveries[1:]]
    assert lanes.held_by_endpoint() == ({"ep_a": 0}, {"ep_a"})  # stopped until that answer is recorded
    more, started = _claim(lanes, endpoint, 1)  # claimed meanwhile: it waits in the database too
    assert started == [] and [d.pk for d in lanes.take_unsent()] == [more[0].pk]
    lanes.recorded([deliveries[0]])
    assert lanes.held_by_endpoint()[1] == set()


def test_a_pause_stops_the_lane_at_once():
    lanes = Lanes(senders=64, clock=Clock())
    deliveries, _ = _claim(lanes, _endpoint("ep_a", max_in_flight=1), 3)

    lanes.answered(deliveries[0], Signal.PAUSE)

    assert len(lanes.take_unsent()) == 2


def test_failures_short_of_the_threshold_and_answers_without_a_request_keep_the_lane_going():
    lanes = Lanes(senders=64, clock=Clock())
    deliveries, _ = _claim(lanes, _endpoint("ep_a", max_in_flight=1), 3, down_in_a_row=CIRCUIT_THRESHOLD - 2)

    assert [d.pk for d, _ in lanes.answered(deliveries[0], Signal.DOWN)] == [deliveries[1].pk]
    assert [d.pk for d, _ in lanes.answered(deliveries[1], None)] == [deliveries[2].pk]  # no request: no signal
    assert lanes.take_unsent() == []


def test_an_idle_lane_is_kept_a_while_then_given_up():
    clock = Clock()
    lanes = Lanes(senders=64, clock=clock)
    deliveries, _ = _claim(lanes, _endpoint("ep_a"), 2)
    for delivery in deliveries:
        lanes.answered(delivery, Signal.UP)

    lanes.recorded(deliveries)

    assert lanes.wait_recorded(timeout=0)
    assert lanes.give_up_at == 100.0 + IDLE_LANE_SECONDS
    clock.now = 100.0 + IDLE_LANE_SECONDS / 2
    assert lanes.give_up_idle() == {}
    clock.now = 100.0 + IDLE_LANE_SECONDS
    assert list(lanes.give_up_idle()) == ["ep_a"]
    assert lanes.give_up_at is None
    assert lanes.heartbeat() == ([], {})


def test_the_heartbeat_covers_every_leased_delivery_until_it_is_recorded():
    lanes = Lanes(senders=64, clock=Clock())
    deliveries, _ = _claim(lanes, _endpoint("ep_a", max_in_flight=1), 3)

    held, owned = lanes.heartbeat()
    assert {d.pk for d in held} == {d.pk for d in deliveries} and list(owned) == ["ep_a"]
    lanes.answered(deliveries[0], Signal.UP)
    lanes.recorded([deliveries[0]])
    assert {d.pk for d in lanes.heartbeat()[0]} == {d.pk for d in deliveries[1:]}
    assert not lanes.wait_recorded(timeout=0)


# --- adaptive concurrency in the lanes ------------------------------------------------------------------------
FAST = Answer(200, "", 5)


def test_an_adaptive_lane_starts_at_the_start_limit_and_each_fast_success_at_the_limit_lets_one_more_go():
    lanes = Lanes(senders=64, clock=Clock())
    deliveries, started = _claim(lanes, _endpoint("ep_a", max_in_flight=8, adaptive=True), 10)

    assert started == [d.pk for d in deliveries[:START_LIMIT]]
    # The first started with one open (below the limit): its success frees its slot only.
    assert [d.pk for d, _ in lanes.answered(deliveries[0], Signal.UP, FAST)] == [deliveries[2].pk]
    # The second started at the limit: slow start adds one, so two go.
    assert [d.pk for d, _ in lanes.answered(deliveries[1], Signal.UP, FAST)] == [d.pk for d in deliveries[3:5]]
    assert lanes.limits() == {"ep_a": 3}


def test_a_429_halves_an_adaptive_lane_and_the_limit_is_what_the_schedule_gets_written():
    lanes = Lanes(senders=64, clock=Clock())
    deliveries, _ = _claim(lanes, _endpoint("ep_a", max_in_flight=8, adaptive=True), 20, concurrency=(6, "", None))
    assert lanes.limits() == {"ep_a": 6}  # where the last owner left it

    assert lanes.answered(deliveries[5], Signal.UP, Answer(429, "", 5)) == []  # 5 still open: above the new 3
    assert lanes.limits() == {"ep_a": 3}
    assert lanes.heartbeat()[1] == {"ep_a": (3, "429", 6)}  # owned, with what the schedule does not hold yet
    lanes.concurrency_written({"ep_a": (3, "429", 6)})
    assert lanes.heartbeat()[1] == {"ep_a": None}


def test_a_lane_whose_endpoint_stops_adapting_goes_to_its_max_in_flight():
    lanes = Lanes(senders=64, clock=Clock())
    _claim(lanes, _endpoint("ep_a", max_in_flight=8, adaptive=True), 1, concurrency=(3, "429", 6))
    _claim(lanes, _endpoint("ep_a", max_in_flight=8, adaptive=False), 1)

    assert lanes.limits() == {"ep_a": 8}
    assert lanes.heartbeat()[1] == {"ep_a": None}  # nothing learnt to write
