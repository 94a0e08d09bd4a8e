"""Ordered delivery per key with real worker processes and a receiver that fails and stalls: for every key, no
request for event n+1 starts before event n got its 2xx, whatever the failures, the nodes or a killed worker."""

import random
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import pytest

from deliveries.models import Delivery, DeliveryStatus
from tests.factories import make_endpoint
from tests.support.receiver import Received, Receiver, Reply
from tests.support.waiting import wait_until
from webhookhub import publish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@dataclass(frozen=True)
class Seen:
    sequence: int
    event_id: str
    at: float  # the request arrived
    answered_at: float  # the answer was sent (not before)
    status: int


class OrderedReceiver:
    """Answers a quarter of the keyed requests with a 500 at random (at most twice per event, so every one
    arrives within the retries), delays some, and keeps what each key saw."""

    def __init__(self, *, seed: int, hang_first: bool = False) -> None:
        self.by_key: dict[str, list[Seen]] = defaultdict(list)
        self._failures: dict[str, int] = defaultdict(int)
        self._random = random.Random(seed)
        self._hang_first = hang_first
        self._lock = threading.Lock()

    def __call__(self, received: Received) -> Reply:
        key = received.headers.get("webhook-ordering-key")
        if key is None:
            return Reply(status=200)
        event_id = received.headers["webhook-id"]
        with self._lock:
            if self._hang_first and not self.by_key:
                reply = Reply(status=200, delay=20)  # the worker sending this is killed meanwhile
            elif self._failures[event_id] < 2 and self._random.random() < 0.25:
                self._failures[event_id] += 1
                reply = Reply(status=500, delay=self._random.choice([0, 0, 0.05]))
            else:
                reply = Reply(status=200, delay=self._random.choice([0, 0, 0, 0.02, 0.1]))
            sequence = int(received.headers["webhook-sequence"])
            self.by_key[key].append(Seen(sequence, event_id, received.at, received.at + reply.delay, reply.status))
        return reply


def _assert_in_order(by_key: dict[str, list[Seen]], published: dict[str, list[str]], *, one_at_a_time: bool) -> None:
    for key, events in published.items():
        seen = sorted(by_key[key], key=lambda s: s.at)
        firsts = list(dict.fromkeys(s.sequence for s in seen if s.status == 200))
        assert firsts == list(range(1, len(events) + 1)), key  # each delivered, in publish order
        assert {s.event_id for s in seen} == set(events), key
        delivered_at: dict[int, float] = {}  # sequence -> when a 2xx for it was first answered
        for s in seen:
            if s.status == 200:
                delivered_at[s.sequence] = min(s.answered_at, delivered_at.get(s.sequence, s.answered_at))
        for s in seen:
            if s.sequence > 1:
                assert s.at >= delivered_at[s.sequence - 1], f"{key}: #{s.sequence} started before #{s.sequence - 1}"
        if one_at_a_time:  # no two requests of a key were open at once
            for before, after in zip(seen, seen[1:], strict=False):
                assert after.at >= before.answered_at, f"{key}: #{after.sequence} overlapped #{before.sequence}"


def _settled(endpoint_ids: list[str]):
    return lambda: not Delivery.objects.filter(endpoint_id__in=endpoint_ids, status=DeliveryStatus.PENDING).exists()


def test_each_key_is_delivered_in_order_by_two_nodes_through_failures_while_unkeyed_events_flow(e2e, tenant, receiver):
    watcher = OrderedReceiver(seed=25)
    receiver.responder = watcher
    ordered = make_endpoint(tenant, receiver.url("/ordered"), event_types=["chat.updated"], ordered=True).endpoint
    loose = make_endpoint(tenant, receiver.url("/loose"), event_types=["campaign.sent"]).endpoint
    e2e.start_worker()  # two nodes
    e2e.start_all()

    published: dict[str, list[str]] = defaultdict(list)
    loose_events = []
    for n in range(12):
        for k in range(8):
            key = f"conv_{k}"
            published[key].append(publish(tenant=tenant, type="chat.updated", data={"n": n}, ordering_key=key).id)
        loose_events.append(publish(tenant=tenant, type="campaign.sent", data={"n": n}).id)

    wait_until(_settled([loose.pk]), timeout=60, message="the unkeyed events were not delivered")
    loose_done = time.time()
    wait_until(_settled([ordered.pk]), timeout=120, message="not every keyed event was delivered")

    _assert_in_order(watcher.by_key, published, one_at_a_time=True)
    assert {r.headers["webhook-id"] for r in receiver.requests if r.path == "/loose"} == set(loose_events)
    assert loose_done < max(s.at for seen in watcher.by_key.values() for s in seen)  # they did not wait for keys
    assert set(Delivery.objects.filter(endpoint=ordered).values_list("status", flat=True)) == {"succeeded"}
    assert sum(s.status == 500 for seen in watcher.by_key.values() for s in seen) > 0  # failures did happen


def test_a_worker_killed_mid_send_breaks_no_order(e2e, tenant):
    receiver = Receiver().start()
    try:
        watcher = OrderedReceiver(seed=7, hang_first=True)
        receiver.responder = watcher
        make_endpoint(tenant, receiver.url("/ordered"), event_types=["chat.updated"], ordered=True)
        worker = e2e.start_worker()
        e2e.start_beat()
        published = {"conv_a": [publish(tenant=tenant, type="chat.updated", data={"n": 0}, ordering_key="conv_a").id]}
        receiver.wait_for(1, timeout=30)  # the head is being sent, and hangs
        published["conv_a"] += [
            publish(tenant=tenant, type="chat.updated", data={"n": n}, ordering_key="conv_a").id for n in range(1, 6)
        ]
        time.sleep(1)
        assert len(receiver.requests) == 1  # the rest waits behind the hung head

        worker.kill(signal.SIGKILL)
        e2e.start_worker()

        wait_until(
            lambda: not Delivery.objects.filter(status=DeliveryStatus.PENDING).exists(),
            timeout=60,
            message="the key did not drain after the kill",
        )
        # The head went twice (at least once); nothing after it started before it was answered with a 2xx.
        _assert_in_order(watcher.by_key, published, one_at_a_time=False)
        answered = sorted((s for s in watcher.by_key["conv_a"] if s.status == 200), key=lambda s: s.at)
        assert [s.sequence for s in answered] == [1, 1, 2, 3, 4, 5, 6]
    finally:
        receiver.stop()
