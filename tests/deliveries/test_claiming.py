"""Claims take due work round robin over endpoints; one worker at a time owns an endpoint, and leases
within its limits."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.adaptive import START_LIMIT
from deliveries.models import Delivery, DeliveryStatus, EndpointSchedule
from deliveries.pacing import AHEAD_PER_SLOT, CIRCUIT_THRESHOLD, Signal
from deliveries.services.circuits import record_signals
from deliveries.services.claims import claim_due, give_up_ownership, renew_ownership
from subscriptions.models import Endpoint
from tests.factories import make_endpoint
from webhookhub import publish

pytestmark = pytest.mark.django_db

SECOND = timedelta(seconds=1)


@pytest.fixture
def backlog(tenant):
    """``backlog(n, **endpoint fields)``: an endpoint with n due deliveries; static limits unless the fields say
    ``adaptive_concurrency=True`` (these tests hold the ceiling; the adaptive ones say so)."""
    number = iter(range(1000))

    def make(count: int, **fields) -> Endpoint:
        fields.setdefault("adaptive_concurrency", False)
        endpoint = make_endpoint(tenant, f"https://93.184.216.{next(number)}/hook").endpoint
        Endpoint.objects.filter(pk=endpoint.pk).update(**fields)
        for _ in range(count):
            publish(tenant=tenant, type="message.received", data={}, endpoint_ids=[endpoint.pk])
        return endpoint

    return make


def _by_endpoint(ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for endpoint_id in Delivery.objects.filter(pk__in=ids).values_list("endpoint_id", flat=True):
        counts[endpoint_id] = counts.get(endpoint_id, 0) + 1
    return counts


def _claim(owner: str = "a", *, at=None, capacity: int = 100, held=None, skip=None, limits=None):
    return claim_due(
        owner=owner, now=at or timezone.now(), lease_seconds=30, capacity=capacity, held=held, skip=skip, limits=limits
    )


def test_a_backlog_on_one_endpoint_does_not_hold_up_another(backlog):
    noisy = backlog(50)
    quiet = backlog(2)

    claimed = _claim()

    assert _by_endpoint(claimed.delivery_ids) == {noisy.pk: 8 * AHEAD_PER_SLOT, quiet.pk: 2}  # noisy: a bounded share


def test_an_adaptive_endpoint_leases_ahead_for_the_concurrency_it_has_learnt_not_its_ceiling(backlog):
    fresh = backlog(50, adaptive_concurrency=True)
    learnt = backlog(50, adaptive_concurrency=True)
    EndpointSchedule.objects.update_or_create(endpoint=learnt, defaults={"concurrency_limit": 5})

    claimed = _claim()

    assert _by_endpoint(claimed.delivery_ids) == {fresh.pk: START_LIMIT * AHEAD_PER_SLOT, learnt.pk: 5 * AHEAD_PER_SLOT}


def test_an_owner_leases_for_the_limit_it_holds_in_memory(backlog):
    endpoint = backlog(50, adaptive_concurrency=True)

    claimed = _claim(held={endpoint.pk: 3}, limits={endpoint.pk: 7})

    assert _by_endpoint(claimed.delivery_ids) == {endpoint.pk: 7 * AHEAD_PER_SLOT - 3}


def test_claims_share_capacity_and_go_round_robin_when_it_is_short(backlog):
    endpoints = {backlog(10).pk for _ in range(4)}

    one = _claim(capacity=2)
    two = _claim(capacity=2, held=_by_endpoint(one.delivery_ids))

    assert list(_by_endpoint(one.delivery_ids).values()) == [1, 1]  # equal shares
    assert list(_by_endpoint(two.delivery_ids).values()) == [1, 1]
    assert set(_by_endpoint(one.delivery_ids)) | set(_by_endpoint(two.delivery_ids)) == endpoints  # the others' turn


def test_a_share_one_endpoint_cannot_use_goes_to_the_others(backlog):
    few, many = backlog(1), backlog(50)

    claimed = _claim(capacity=20)

    assert _by_endpoint(claimed.delivery_ids) == {few.pk: 1, many.pk: 19}


def test_an_endpoint_is_scheduled_by_one_worker_until_it_gives_it_back(backlog):
    endpoint = backlog(20, max_in_flight=2)
    now = timezone.now()

    mine = _claim("a", at=now)
    another_worker = _claim("b", at=now + SECOND)
    assert len(mine.delivery_ids) == 2 * AHEAD_PER_SLOT
    assert another_worker.delivery_ids == []  # "a" owns it: "b" neither leases nor sends any of it

    give_up_ownership(owner="a", next_starts={endpoint.pk: None})
    after_hand_back = _claim("b", at=now + 2 * SECOND)

    assert len(after_hand_back.delivery_ids) == 2 * AHEAD_PER_SLOT
    assert EndpointSchedule.objects.get(endpoint=endpoint).owner == "b"
    assert Delivery.objects.filter(endpoint=endpoint, attempts__isnull=False).count() == 0  # no attempt made


def test_a_dead_owners_endpoint_is_taken_over_when_its_ownership_lapses(backlog):
    endpoint = backlog(20, max_in_flight=1)
    now = timezone.now()
    _claim("a", at=now)

    renew_ownership(owner="a", endpoint_ids=[endpoint.pk], until=now + 60 * SECOND)  # a's heartbeat

    while_renewed = _claim("b", at=now + 31 * SECOND)
    after_a_crash = _claim("b", at=now + 61 * SECOND)  # "a" stopped renewing: its ownership and leases ran out

    assert while_renewed.delivery_ids == []
    assert len(after_a_crash.delivery_ids) == AHEAD_PER_SLOT
    assert EndpointSchedule.objects.get(endpoint=endpoint).owner == "b"


def test_an_owner_leases_only_up_to_its_share_ahead(backlog):
    endpoint = backlog(100, max_in_flight=2)
    now = timezone.now()
    first = _claim(at=now)

    full = _claim(at=now, held={endpoint.pk: len(first.delivery_ids)})
    three_answered = _claim(at=now, held={endpoint.pk: len(first.delivery_ids) - 3})

    assert len(first.delivery_ids) == 2 * AHEAD_PER_SLOT
    assert full.delivery_ids == [] and full.wake_at is None  # it waits for answers, not for a time
    assert len(three_answered.delivery_ids) == 3


def test_a_rate_limited_endpoint_is_leased_about_a_second_ahead(backlog):
    endpoint = backlog(30, rate_limit_per_s=5, max_in_flight=8)

    claimed = _claim()

    assert len(claimed.delivery_ids) == 5
    [endpoint_claim] = claimed.endpoints
    assert (endpoint_claim.endpoint.pk, endpoint_claim.endpoint.rate_limit_per_s) == (endpoint.pk, 5)


def test_the_next_owner_continues_from_where_the_rate_limit_was_left(backlog):
    endpoint = backlog(3, rate_limit_per_s=2)
    now = timezone.now()
    _claim("a", at=now)
    give_up_ownership(owner="a", next_starts={endpoint.pk: now + 0.5 * SECOND})
    Delivery.objects.filter(endpoint=endpoint).update(lease_until=None)

    [endpoint_claim] = _claim("b", at=now + 0.1 * SECOND).endpoints

    assert endpoint_claim.next_start_at == now + 0.5 * SECOND


def test_an_endpoint_the_owner_skips_gets_nothing_this_round(backlog):
    endpoint = backlog(5)

    assert _claim(skip={endpoint.pk}).delivery_ids == []
    assert len(_claim().delivery_ids) == 5


def test_a_paused_endpoint_is_not_claimed_until_the_pause_ends(backlog):
    endpoint = backlog(3)
    now = timezone.now()
    record_signals({endpoint.pk: [(Signal.PAUSE, now + 30 * SECOND)]}, now=now)

    during = _claim(at=now + SECOND)
    after = _claim(at=now + 31 * SECOND)

    assert during.delivery_ids == [] and during.wake_at == now + 30 * SECOND
    assert len(after.delivery_ids) == 3


def test_an_open_circuit_sends_one_probe_and_its_success_lets_the_backlog_go(backlog):
    endpoint = backlog(50)
    now = timezone.now()
    record_signals({endpoint.pk: [(Signal.DOWN, None)] * CIRCUIT_THRESHOLD}, now=now)
    retried = Delivery.objects.filter(endpoint=endpoint).first()
    Delivery.objects.filter(pk=retried.pk).update(next_attempt_at=now + timedelta(hours=2))  # a scheduled retry

    before_probe = _claim(at=now + SECOND)
    probe = _claim(at=now + 6 * SECOND)
    while_probing = _claim(at=now + 7 * SECOND, held={endpoint.pk: 1})
    another_worker = _claim("b", at=now + 7 * SECOND)

    assert before_probe.delivery_ids == [] and before_probe.wake_at == now + 5 * SECOND
    assert len(probe.delivery_ids) == 1
    assert while_probing.delivery_ids == [] and another_worker.delivery_ids == []

    Delivery.objects.filter(pk__in=probe.delivery_ids).update(status=DeliveryStatus.SUCCEEDED, lease_until=None)
    record_signals({endpoint.pk: [(Signal.UP, None)]}, now=now + 8 * SECOND)
    drained = _claim(at=now + 8 * SECOND)

    assert len(drained.delivery_ids) == 8 * AHEAD_PER_SLOT  # at the endpoint's limits again
    retried.refresh_from_db()
    assert retried.next_attempt_at <= now + 8 * SECOND  # the retry waiting out the outage goes now
    assert EndpointSchedule.objects.get(endpoint=endpoint).circuit_opened_at is None


def test_deliveries_of_a_disabled_endpoint_are_claimed_to_be_cancelled_whatever_its_limits(backlog):
    backlog(3, max_in_flight=1, rate_limit_per_s=1, enabled=False)

    assert len(_claim(capacity=10).delivery_ids) == 3


def test_nothing_due_claims_nothing(backlog):
    endpoint = backlog(2)
    Delivery.objects.filter(endpoint=endpoint).update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    assert _claim().delivery_ids == []


def test_with_more_endpoints_than_room_the_unasked_take_their_turn_and_nothing_is_left_unsaid(backlog):
    drained, one, many = backlog(0), backlog(1), backlog(5)  # as a wake-up named them, the first already drained

    claimed = claim_due(
        owner="a", now=timezone.now(), lease_seconds=30, capacity=2, endpoint_ids=[drained.pk, one.pk, many.pk]
    )

    assert _by_endpoint(claimed.delivery_ids) == {one.pk: 1, many.pk: 1}
    assert claimed.more_due  # "many" has more: its owner claims again as answers come


def test_a_claim_that_took_all_there_was_leaves_nothing_due(backlog):
    endpoint = backlog(3)

    claimed = claim_due(owner="a", now=timezone.now(), lease_seconds=30, capacity=100, endpoint_ids=[endpoint.pk])

    assert len(claimed.delivery_ids) == 3
    assert not claimed.more_due
    assert [delivery.event.body for delivery in claimed.deliveries] == list(
        Delivery.objects.filter(pk__in=claimed.delivery_ids)
        .order_by("next_attempt_at", "pk")
        .values_list("event__body", flat=True)
    )  # loaded by the lease itself


def test_the_heartbeat_and_the_hand_back_write_the_learnt_concurrency_of_the_endpoints_given_only(backlog):
    learnt, unchanged = backlog(1, adaptive_concurrency=True), backlog(1, adaptive_concurrency=True)
    now = timezone.now()
    _claim("a", at=now)
    EndpointSchedule.objects.filter(endpoint=unchanged).update(
        concurrency_limit=4, concurrency_limited_by="latency", concurrency_limited_at=9
    )

    renew_ownership(
        owner="a",
        endpoint_ids=[learnt.pk, unchanged.pk],
        until=now + 30 * SECOND,
        concurrency={learnt.pk: (3, "429", 7)},
    )
    give_up_ownership(
        owner="a", next_starts={learnt.pk: None, unchanged.pk: None}, concurrency={learnt.pk: (5, "", None)}
    )

    rows = {
        row.endpoint_id: (row.owner, row.concurrency_limit, row.concurrency_limited_by, row.concurrency_limited_at)
        for row in EndpointSchedule.objects.all()
    }
    assert rows == {learnt.pk: ("", 5, "", None), unchanged.pk: ("", 4, "latency", 9)}


def test_the_heartbeat_writes_no_concurrency_for_an_endpoint_another_owner_holds(backlog):
    endpoint = backlog(1, adaptive_concurrency=True)
    now = timezone.now()
    _claim("a", at=now)

    renew_ownership(
        owner="b", endpoint_ids=[endpoint.pk], until=now + 30 * SECOND, concurrency={endpoint.pk: (3, "429", 7)}
    )

    assert EndpointSchedule.objects.get(endpoint=endpoint).concurrency_limit is None
