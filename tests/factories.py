"""Rows as the application makes them: tenants, users, memberships, endpoints and deliveries, for every suite."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Membership, Role, Tenant
from deliveries.models import Delivery, DeliveryStatus
from subscriptions.models import Endpoint, EndpointHealth
from subscriptions.services import create_endpoint
from webhookhub import publish

URL = "https://93.184.216.34/hook"
"""A public address literal: it passes the URL policy without DNS; use it where nothing is sent (no worker runs)."""

PASSWORD = "correct horse battery"
"""Every ``UserFactory`` user's password (for logging in through a form)."""


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.Sequence(lambda n: f"Tenant {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password(PASSWORD)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.ADMIN


def make_endpoint(tenant: Tenant, url: str, **kwargs):
    """An endpoint through the real service (validation, secret); returns CreatedEndpoint."""
    kwargs.setdefault("event_types", ["*"])
    return create_endpoint(tenant=tenant, url=url, **kwargs)


def endpoint_for(tenant: Tenant, **kwargs) -> Endpoint:
    """An endpoint of ``tenant`` at ``URL`` (every event type unless ``event_types`` is given)."""
    return make_endpoint(tenant, URL, **kwargs).endpoint


def make_user(**fields):
    """A saved ``UserFactory`` user (the factory skips the save after ``set_password``: unsaved, a session's
    auth hash would not match and ``force_login`` would not stick)."""
    user = UserFactory(**fields)
    user.save()
    return user


def delivery_to(endpoint: Endpoint, *, type: str = "message.received", data: dict | None = None, **state) -> Delivery:
    """A published event's delivery to ``endpoint``; ``state`` overrides columns (status, created_at, ...)."""
    event = publish(tenant=endpoint.tenant, type=type, data=data or {"n": 1}, endpoint_ids=[endpoint.pk])
    delivery = Delivery.objects.get(event=event, endpoint=endpoint)
    if state:
        Delivery.objects.filter(pk=delivery.pk).update(**state)
        delivery.refresh_from_db()
    return delivery


def failed_delivery(tenant: Tenant, endpoint: Endpoint | None = None, *, type: str = "message.received") -> Delivery:
    """A delivery whose retries are exhausted (as a worker would leave it), to ``endpoint_for(tenant)`` by default."""
    return delivery_to(
        endpoint or endpoint_for(tenant),
        type=type,
        status=DeliveryStatus.FAILED,
        attempt_count=8,
        next_attempt_at=None,
        last_status_code=500,
        completed_at=timezone.now(),
    )


def failing_for(endpoint, duration) -> EndpointHealth:
    """An endpoint whose requests have all failed for ``duration`` (its auto-disable clock running)."""
    since = timezone.now() - duration
    health, _ = EndpointHealth.objects.update_or_create(
        endpoint=endpoint,
        defaults={"last_attempt_at": since, "last_status_code": 500, "failed_in_a_row": 1, "failing_since": since},
    )
    return health
