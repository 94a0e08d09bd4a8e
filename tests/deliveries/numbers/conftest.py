import pytest

from tests.factories import endpoint_for


@pytest.fixture
def endpoint(tenant):
    """An endpoint of ``tenant`` named "orders" (at the public URL; nothing is sent). The same as the
    dashboard suite's: test_rollups.py had it from tests/web/dashboard/conftest.py before it moved here."""
    return endpoint_for(tenant, name="orders")
