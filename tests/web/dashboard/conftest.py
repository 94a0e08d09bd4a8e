import pytest

from tests.factories import endpoint_for
from tests.support.admin_clients import other_admin, superuser, tenant_admin  # noqa: F401 (fixtures)


@pytest.fixture
def endpoint(tenant):
    """An endpoint of ``tenant`` named "orders" (at the public URL; nothing is sent)."""
    return endpoint_for(tenant, name="orders")
