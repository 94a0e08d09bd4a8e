import pytest

from tests.support.admin_clients import other_admin, superuser, tenant_admin  # noqa: F401 (fixtures)


@pytest.fixture
def no_private_networks(settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": []}
