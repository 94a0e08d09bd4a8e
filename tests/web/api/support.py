"""Helpers for the REST API tests: clients for every kind of caller, rows to act on, a snapshot of the database."""

from rest_framework.test import APIClient

from accounts.models import Role
from accounts.services import create_api_key
from tests.support.clients import member_client

API = "/api/v1"


def key_client(tenant, role: str = Role.ADMIN) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {create_api_key(tenant=tenant, role=role).key}")


def session_client(tenant=None, role: str = Role.ADMIN, **user_fields) -> APIClient:
    """A REST client with a logged-in session; its user is a member of ``tenant`` with ``role`` when given."""
    return member_client(tenant, role, client_class=APIClient, **user_fields)


def superuser_client() -> APIClient:
    return session_client(is_superuser=True, is_staff=True)


def results(response) -> list[dict]:
    return response.json()["results"]


def ids(response, key: str = "id") -> list:
    return [row[key] for row in results(response)]
