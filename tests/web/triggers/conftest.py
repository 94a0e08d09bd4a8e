import pytest

from tests.support.admin_clients import other_admin, superuser, tenant_admin  # noqa: F401 (fixtures)
from tests.support.api_clients import admin  # noqa: F401 (fixtures)
from tests.web.triggers.support import make_trigger


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
