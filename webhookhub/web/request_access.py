"""``accounts.access``'s answers for the user of one request, looked up once per request.

The admin asks "is this a tenant admin?" and "which tenants?" for every model on a page, and the
dashboard asks before every view: the rule is ``accounts.access``'s, only the caching is here.
"""

from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import access
from accounts.models import Tenant

_TENANTS = "_administered_tenants"
_IS_ADMIN = "_is_tenant_admin"


def administered_tenants(request: HttpRequest) -> QuerySet[Tenant]:
    """``access.administered_tenants`` of the request's user."""
    if not hasattr(request, _TENANTS):
        setattr(request, _TENANTS, access.administered_tenants(request.user))  # noqa: B010 - once per request
    return getattr(request, _TENANTS)


def is_tenant_admin(request: HttpRequest) -> bool:
    """``access.is_tenant_admin`` of the request's user."""
    if not hasattr(request, _IS_ADMIN):
        setattr(request, _IS_ADMIN, access.is_tenant_admin(request.user))  # noqa: B010 - once per request
    return getattr(request, _IS_ADMIN)
