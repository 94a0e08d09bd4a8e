import pytest
from rest_framework.test import APIClient

from tests.api.support import key_client
from tests.factories import TenantFactory


@pytest.fixture
def other_tenant(db):
    return TenantFactory()


@pytest.fixture
def admin(tenant) -> APIClient:
    """A client with an admin API key of ``tenant``."""
    return key_client(tenant)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users are made per test; the production hasher would spend most of the run hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
