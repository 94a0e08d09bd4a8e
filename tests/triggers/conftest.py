import pytest
from rest_framework.test import APIClient

from tests.admin.support import staff_client, superuser_client
from tests.api.support import key_client
from tests.factories import TenantFactory
from tests.triggers.support import make_trigger
from webhookhub.accounts.models import Role


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users are made per test; the production hasher would spend most of the run hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def other_tenant(db):
    return TenantFactory()


@pytest.fixture
def admin(tenant) -> APIClient:
    """A REST client with an admin API key of ``tenant``."""
    return key_client(tenant)


@pytest.fixture
def tenant_admin(tenant):
    """A Django-admin staff client whose user is an admin of ``tenant`` only."""
    return staff_client(tenant, Role.ADMIN)


@pytest.fixture
def made(tenant):
    """``tenant``'s standard trigger and its key (a CreatedTrigger)."""
    return make_trigger(tenant)


@pytest.fixture
def theirs(other_tenant):
    """``other_tenant``'s standard trigger and its key."""
    return make_trigger(other_tenant, name="their crm")


@pytest.fixture
def rate_limit(settings):
    """Sets the deployment's default requests per minute per trigger."""

    def set_limit(per_minute: int) -> None:
        settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "TRIGGER_RATE_LIMIT_PER_MINUTE": per_minute}

    return set_limit


@pytest.fixture
def superuser(db):
    return superuser_client()
