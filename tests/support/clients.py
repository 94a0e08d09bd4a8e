"""Logged-in test clients, for the admin and dashboard (Django's ``Client``) and the REST API (``APIClient``)."""

from django.test import Client

from accounts.models import Role
from tests.factories import MembershipFactory, make_user


def logged_in(user, client_class: type[Client] = Client) -> Client:
    """A ``client_class`` client with a session of ``user`` (also kept as ``client.user``)."""
    client = client_class()
    client.force_login(user)
    client.user = user
    return client


def member_client(tenant=None, role: str = Role.ADMIN, *, client_class: type[Client] = Client, **user_fields) -> Client:
    """A new user (``user_fields``: is_staff, is_superuser, ...), logged in; a member of ``tenant`` with
    ``role`` when ``tenant`` is given."""
    user = make_user(**user_fields)
    if tenant is not None:
        MembershipFactory(user=user, tenant=tenant, role=role)
    return logged_in(user, client_class)
