"""REST API clients as fixtures, shared by the API and trigger tests (import them in a conftest)."""

import pytest
from rest_framework.test import APIClient

from tests.web.api.support import key_client


@pytest.fixture
def admin(tenant) -> APIClient:
    """A REST client with an admin API key of ``tenant``."""
    return key_client(tenant)
