"""Waiting for what other processes and threads do (worker processes, a worker's threads): poll for a signal."""

import time

from deliveries.models import Delivery, DeliveryStatus


def wait_until(predicate, timeout: float = 30.0, message: str = "condition not met"):
    """Poll ``predicate`` every 0.1 s until it returns something truthy, and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(message)


def delivery_settled(event_id: str):
    """A ``wait_until`` predicate: the event's delivery once it is no longer pending (else None)."""

    def check():
        delivery = Delivery.objects.filter(event_id=event_id).first()
        return delivery if delivery and delivery.status != DeliveryStatus.PENDING else None

    return check


def wait_for_status(event_id: str, status: str, timeout: float = 30.0) -> Delivery:
    """The event's delivery, once it has ``status``; fails after ``timeout`` s, saying the status it has."""

    def check():
        return Delivery.objects.filter(event_id=event_id, status=status).first()

    def found() -> str:
        delivery = Delivery.objects.filter(event_id=event_id).first()
        return delivery.status if delivery else "no delivery"

    try:
        return wait_until(check, timeout)
    except AssertionError:
        raise AssertionError(f"delivery of {event_id} is not {status}: {found()}") from None
