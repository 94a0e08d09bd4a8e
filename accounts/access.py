"""Who may act for which tenant, with which role: one answer for the API, the admin and the dashboard.

Webhook settings belong to a tenant's admins (``Membership`` role admin); managers and users have
no access. Superusers act for every tenant. API keys act for their own tenant with their role
(``webhookhub.web.api.tenancy`` applies that to a request). A tenant is named by its slug or
its id, wherever it is named.
"""

from django.db.models import QuerySet

from accounts.models import Membership, Role, Tenant
from ground.model_fields import concrete_field

_LONGEST_NAME = max(concrete_field(Tenant, "slug").max_length or 0, concrete_field(Tenant, "id").max_length or 0)


def administered_tenants(user) -> QuerySet[Tenant]:
    """The tenants this user may configure: every tenant for a superuser, none for an inactive user."""
    if not user.is_active:
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(pk__in=Membership.objects.filter(user=user, role=Role.ADMIN).values("tenant"))


def is_tenant_admin(user) -> bool:
    """Whether the user may see webhook settings at all (an admin of some tenant, or a superuser)."""
    return bool(user.is_active and (user.is_superuser or administered_tenants(user).exists()))


def tenant_named(value: str, *, among: QuerySet[Tenant] | None = None) -> Tenant | None:
    """The tenant with this slug or id (a slug wins over an id), among ``among`` if given.

    None, without a query, for a value no slug or id can be: too long, or with a NUL (which
    PostgreSQL refuses in a query).
    """
    if "\x00" in value or len(value) > _LONGEST_NAME:
        return None
    tenants = Tenant.objects.all() if among is None else among
    return tenants.filter(slug=value).first() or tenants.filter(pk=value).first()
