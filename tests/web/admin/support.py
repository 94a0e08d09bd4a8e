"""Helpers for the admin tests: logged-in staff clients per role, admin URLs, form data, what a page shows."""

import re

from django.contrib.admin.utils import quote, unquote
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from tests.factories import URL
from tests.support.clients import member_client


def staff_client(tenant=None, role: str = Role.ADMIN, **user_fields) -> Client:
    """A logged-in staff user (``client.user``); a member of ``tenant`` with ``role`` when given."""
    return member_client(tenant, role, is_staff=True, **user_fields)


def superuser_client() -> Client:
    return staff_client(is_superuser=True)


def admin_url(name: str, *args) -> str:
    """Django's own object pages take quoted primary keys (as its links do); the endpoint's extra pages
    (send-test, reveal-secret, test-result) take them as they are, as the change page links to them."""
    if name.endswith(("_change", "_delete", "_history")):
        args = tuple(quote(arg) if isinstance(arg, str) else arg for arg in args)
    return reverse(f"admin:{name}", args=args)


def endpoint_form(owner, /, **overrides) -> dict:
    """What the endpoint add/change page posts for a plain endpoint of ``owner``; ``None`` leaves a field out."""
    data = {
        "tenant": owner.pk,
        "name": "orders",
        "url": URL,
        "description": "",
        "event_types": ["*"],
        "enabled": "on",
        "auth_type": "none",
        "auth_token": "",
        "auth_header": "",
        "auth_value": "",
        "auth_username": "",
        "auth_password": "",
        "custom_headers_text": "",
        "timeout_s": "",
        "rate_limit_per_s": "",
        "filter": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def text(response) -> str:
    return response.content.decode()


def messages_shown(response) -> list[str]:
    """The texts of the admin messages on a rendered page."""
    return [str(message) for message in response.context["messages"]] if response.context else []


def form_errors(response) -> dict:
    """The bound admin form's errors on a re-rendered add/change page."""
    return response.context["adminform"].form.errors


def change_link(name: str, pk) -> str:
    """The href of an object's change page as it appears in a changelist."""
    return admin_url(f"{name}_change", pk)


def shown_ids(html: str, name: str) -> set[str]:
    """Ids of the objects whose change links appear on a page."""
    prefix = re.escape(admin_url(f"{name}_changelist"))
    return {unquote(found) for found in re.findall(prefix + r"([^/\"]+)/change/", html)}
