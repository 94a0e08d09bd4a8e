import pytest

from tests.admin.support import staff_client, superuser_client
from tests.factories import TenantFactory
from webhookhub.accounts.models import Role


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users are made per test; the production hasher would spend most of the run hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def other_tenant(db):
    return TenantFactory()


@pytest.fixture
def tenant_admin(tenant):
    """A staff client whose user is an admin of ``tenant`` only."""
    return staff_client(tenant, Role.ADMIN)


@pytest.fixture
def other_admin(other_tenant):
    """A staff client whose user is an admin of ``other_tenant`` only."""
    return staff_client(other_tenant, Role.ADMIN)


@pytest.fixture
def superuser(db):
    return superuser_client()
