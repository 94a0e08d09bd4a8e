"""Ordering keys: an ordered endpoint's deliveries of one key are numbered in publish order, and a claim leases
a keyed delivery only when nothing of its key is before it or being sent (the database decides)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.http import HttpResult
from deliveries.models import Delivery, DeliveryStatus, KeySequence
from deliveries.outbound import build_request
from deliveries.selectors import blocked_keys, held_back_by
from deliveries.services.actions import cancel_pending, resend
from deliveries.services.batch_publishing import publish_many
from deliveries.services.recording import write_results
from deliveries.services.retention import forget_idle_keys
from deliveries.services.sending import SendResult, claim
from events.exceptions import InvalidPayload
from events.models import Event
from ground.conf import webhookhub_settings
from subscriptions.services import update_endpoint
from tests.factories import make_endpoint
from tests.support.db import db_state
from webhookhub import publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def ordered(tenant):
    return make_endpoint(tenant, "https://93.184.216.34/ordered", ordered=True).endpoint


@pytest.fixture
def unordered(tenant):
    return make_endpoint(tenant, "https://93.184.216.35/unordered").endpoint


def _publish(tenant, key: str | None, n: int = 0, type: str = "chat.updated") -> Event:
    return publish(tenant=tenant, type=type, data={"n": n}, ordering_key=key)


def _keyed(endpoint, key: str) -> list[Delivery]:
    return list(Delivery.objects.filter(endpoint=endpoint, ordering_key=key).order_by("sequence"))


def _claim(*, owner: str = "w1", at=None) -> list[Delivery]:
    deliveries, _ = claim(owner=owner, now=at or timezone.now(), lease_seconds=30, capacity=100)
    return deliveries


def _answer(deliveries: list[Delivery], status: int, *, final: bool = False) -> None:
    """Record an answer of each claimed delivery, as the worker's recorder does."""
    config = webhookhub_settings()
    if final:
        config = {**config, "RETRY_SCHEDULE": []}
    now = timezone.now()
    write_results([SendResult(d, now, {}, HttpResult(status, duration_ms=5)) for d in deliveries], [], config)


def _events(deliveries: list[Delivery]) -> list[str]:
    return [delivery.event_id for delivery in deliveries]


# --- numbering ------------------------------------------------------------------------------------------------


def test_an_ordered_endpoints_deliveries_of_a_key_are_numbered_in_publish_order(tenant, ordered, unordered):
    first, second = _publish(tenant, "conv_1", 1), _publish(tenant, "conv_1", 2)
    other = _publish(tenant, "conv_2", 3)

    assert [(d.event_id, d.sequence) for d in _keyed(ordered, "conv_1")] == [(first.pk, 1), (second.pk, 2)]
    assert [(d.event_id, d.sequence) for d in _keyed(ordered, "conv_2")] == [(other.pk, 1)]
    # An endpoint that does not ask for order pays nothing: no key, no number, no counter.
    assert set(Delivery.objects.filter(endpoint=unordered).values_list("ordering_key", "sequence")) == {(None, None)}
    assert set(KeySequence.objects.values_list("endpoint_id", "key", "last")) == {
        (ordered.pk, "conv_1", 2),
        (ordered.pk, "conv_2", 1),
    }
    assert Event.objects.get(pk=first.pk).ordering_key == "conv_1"


def test_without_a_key_the_event_types_path_gives_one_and_other_types_have_none(tenant, ordered):
    message = publish(tenant=tenant, type="message.received", data={"chat_id": "chat_9", "id": "m1"})
    chat = publish(tenant=tenant, type="chat.closed", data={"id": "chat_9"})
    campaign = publish(tenant=tenant, type="campaign.sent", data={"id": "cmp_1"})
    numeric = publish(tenant=tenant, type="contact.updated", data={"id": 42})
    explicit = publish(tenant=tenant, type="message.sent", data={"chat_id": "chat_9"}, ordering_key="mine")

    assert [e.ordering_key for e in (message, chat, campaign, numeric, explicit)] == [
        "chat_9",
        "chat_9",
        None,
        "42",
        "mine",
    ]
    assert [d.event_id for d in _keyed(ordered, "chat_9")] == [message.pk, chat.pk]
    assert Delivery.objects.get(event=campaign, endpoint=ordered).sequence is None


@pytest.mark.parametrize(
    ("key", "problem"),
    [("", "non-empty"), ("x" * 201, "at most 200"), ("a\nb", "printable"), (7, "non-empty string")],
)
def test_a_bad_key_is_refused_and_nothing_is_written(tenant, ordered, key, problem):
    before = db_state()

    with pytest.raises(InvalidPayload, match=problem):
        publish(tenant=tenant, type="chat.updated", data={}, ordering_key=key)

    assert db_state() == before


def test_a_batch_numbers_its_events_after_those_published_before_it(tenant, ordered, unordered):
    first = _publish(tenant, "conv_1")
    results = publish_many(
        tenant=tenant,
        events=[
            {"type": "chat.updated", "data": {"n": 1}, "ordering_key": "conv_1"},
            {"type": "chat.updated", "data": {"n": 2}, "ordering_key": "conv_2"},
            {"type": "chat.updated", "data": {"n": 3}, "ordering_key": "conv_1"},
            {"type": "campaign.sent", "data": {"n": 4}},
        ],
    )

    assert _events(_keyed(ordered, "conv_1")) == [first.pk, results[0].event.pk, results[2].event.pk]
    assert [d.sequence for d in _keyed(ordered, "conv_1")] == [1, 2, 3]
    assert [d.sequence for d in _keyed(ordered, "conv_2")] == [1]
    assert Delivery.objects.get(event=results[3].event, endpoint=ordered).ordering_key is None
    assert not Delivery.objects.filter(endpoint=unordered, ordering_key__isnull=False).exists()


def test_turning_ordering_on_applies_to_events_published_after_it(tenant, unordered):
    before = _publish(tenant, "conv_1")
    update_endpoint(endpoint=unordered, ordered=True)
    after = _publish(tenant, "conv_1")

    assert Delivery.objects.get(event=before).sequence is None
    assert Delivery.objects.get(event=after).sequence == 1


# --- the rule -------------------------------------------------------------------------------------------------


def test_turning_ordering_off_lets_the_waiting_deliveries_go_at_once(tenant, ordered):
    events = [_publish(tenant, "a", n) for n in range(3)]
    assert len(_claim()) == 1

    update_endpoint(endpoint=ordered, ordered=False)

    assert sorted(_events(_claim())) == sorted(e.pk for e in events[1:])


def test_a_claim_takes_only_the_head_of_each_key_and_every_unkeyed_delivery(tenant, ordered):
    a1, a2, a3 = (_publish(tenant, "a", n) for n in range(3))
    b1 = _publish(tenant, "b")
    loose = _publish(tenant, None, type="campaign.sent")

    claimed = _claim()

    assert sorted(_events(claimed)) == sorted([a1.pk, b1.pk, loose.pk])
    assert _claim(owner="w1") == []  # the rest waits however often it asks
    _answer([d for d in claimed if d.event_id == a1.pk], 200)
    assert _events(_claim()) == [a2.pk]
    assert a3.pk not in _events(_claim())


def test_a_failing_head_holds_its_key_through_its_retries_and_the_next_goes_once_it_fails_for_good(tenant, ordered):
    head, behind = _publish(tenant, "a", 1), _publish(tenant, "a", 2)
    [claimed] = _claim()

    _answer([claimed], 500)  # a retry later
    Delivery.objects.filter(pk=claimed.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert _claim() == []
    assert held_back_by(Delivery.objects.get(event=behind), now=timezone.now()).pk == claimed.pk

    Delivery.objects.filter(pk=claimed.pk).update(next_attempt_at=timezone.now())
    [again] = _claim()
    assert again.event_id == head.pk
    _answer([again], 500, final=True)

    assert Delivery.objects.get(pk=claimed.pk).status == DeliveryStatus.FAILED
    assert _events(_claim()) == [behind.pk]


def test_a_cancelled_head_lets_the_next_go(tenant, ordered):
    head, behind = _publish(tenant, "a", 1), _publish(tenant, "a", 2)
    Delivery.objects.filter(event=head).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert _claim() == []

    cancel_pending(Delivery.objects.filter(event=head))

    assert _events(_claim()) == [behind.pk]


def test_nothing_of_a_key_starts_while_one_of_it_is_being_sent_even_a_resend_from_before(tenant, ordered):
    old = _publish(tenant, "a", 1)
    [first] = _claim()
    _answer([first], 200)
    newer = _publish(tenant, "a", 2)
    [sending] = _claim()
    assert sending.event_id == newer.pk

    resend(Delivery.objects.get(event=old))

    assert _claim() == []  # the resend waits for the one being sent
    assert held_back_by(Delivery.objects.get(event=old), now=timezone.now()).pk == sending.pk
    _answer([sending], 200)
    assert _events(_claim()) == [old.pk]


def test_a_lease_that_ran_out_gives_the_head_again_not_the_next(tenant, ordered):
    head, _ = _publish(tenant, "a", 1), _publish(tenant, "a", 2)
    [leased] = _claim(owner="dead")

    later = timezone.now() + timedelta(seconds=31)  # the worker died: its lease runs out

    assert _events(_claim(owner="w2", at=later)) == [head.pk]
    assert leased.event_id == head.pk


# --- what receivers and admins see ---------------------------------------------------------------------------


def test_a_keyed_request_carries_the_key_and_its_number(tenant, ordered):
    request = build_request(
        endpoint=ordered,
        event_id="evt_1",
        body="{}",
        secrets=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        timestamp=1,
        user_agent="t",
        ordering=("conv 1/é%", 7),
    )
    plain = build_request(endpoint=ordered, event_id="evt_2", body="{}", secrets=[], timestamp=1, user_agent="t")

    assert request.headers["webhook-ordering-key"] == "conv 1/%C3%A9%25"  # printable ASCII as it is
    assert request.headers["webhook-sequence"] == "7"
    assert "webhook-ordering-key" not in plain.headers and "webhook-sequence" not in plain.headers


def test_keys_waiting_longer_than_the_threshold_are_blocked(tenant, ordered):
    _publish(tenant, "stuck", 1), _publish(tenant, "stuck", 2), _publish(tenant, "stuck", 3)
    _publish(tenant, "fresh", 1), _publish(tenant, "fresh", 2)
    _publish(tenant, "alone", 1)
    long_ago = timezone.now() - timedelta(hours=2)
    Delivery.objects.filter(ordering_key__in=["stuck", "alone"]).update(created_at=long_ago)

    blocked = blocked_keys(now=timezone.now(), older_than_seconds=3600)

    assert [(b.endpoint_id, b.key, b.waiting) for b in blocked] == [(ordered.pk, "stuck", 3)]
    assert blocked_keys(now=timezone.now(), older_than_seconds=3600, tenant_id="ten_other") == []


def test_the_counters_of_keys_idle_past_retention_are_forgotten_unless_something_of_the_key_waits(tenant, ordered):
    _publish(tenant, "idle"), _publish(tenant, "waiting"), _publish(tenant, "recent")
    Delivery.objects.filter(ordering_key="idle").update(status=DeliveryStatus.SUCCEEDED)
    long_ago = timezone.now() - timedelta(days=31)
    KeySequence.objects.filter(key__in=["idle", "waiting"]).update(updated_at=long_ago)

    forgotten = forget_idle_keys(before=timezone.now() - timedelta(days=30))

    assert forgotten == 1
    assert sorted(KeySequence.objects.values_list("key", flat=True)) == ["recent", "waiting"]
    assert Delivery.objects.get(event=_publish(tenant, "idle"), endpoint=ordered).sequence == 1  # starts again
