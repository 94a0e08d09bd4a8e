import factory
from django.contrib.auth import get_user_model

from subscriptions.services import create_endpoint
from webhookhub.accounts.models import Membership, Role, Tenant


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
    password = factory.django.Password("correct horse battery")


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
