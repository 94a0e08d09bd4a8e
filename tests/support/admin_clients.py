"""Django-admin clients as fixtures, shared by the admin, dashboard and trigger tests (import them in a conftest)."""

import pytest

from accounts.models import Role
from tests.web.admin.support import staff_client, superuser_client


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
