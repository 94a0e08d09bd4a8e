"""Which tenant a request acts for, and whether it may touch webhook settings at all.

API keys act for their tenant with their role. Session users act for a tenant where they
are an admin: the one named by the ``X-Tenant`` header (or ``?tenant=``) or, without it,
their only admin membership. Superusers act for the named tenant or, without one, all.
"""

from dataclasses import dataclass

from rest_framework.exceptions import PermissionDenied, ValidationError

from accounts.access import administered_tenants, tenant_named
from accounts.models import Role, Tenant
from webhookhub.web.api.authentication import ApiKeyPrincipal


@dataclass(frozen=True)
class Access:
    tenant: Tenant | None  # None: a superuser acting for every tenant


def resolve_access(request) -> Access:
    user = request.user
    requested = request.headers.get("X-Tenant") or request.query_params.get("tenant")
    if requested and ("\x00" in requested or len(requested) > 64):
        raise ValidationError({"tenant": "Not a tenant slug or id."})
    if isinstance(user, ApiKeyPrincipal):
        if user.api_key.role != Role.ADMIN:
            raise PermissionDenied("This API key's role has no access to webhook settings.")
        if requested and requested not in (user.api_key.tenant.slug, user.api_key.tenant.pk):
            raise PermissionDenied("This API key belongs to another tenant.")
        return Access(user.api_key.tenant)
    if user.is_superuser:
        if not requested:
            return Access(None)
        tenant = tenant_named(requested)
        if tenant is None:
            raise ValidationError({"tenant": f"No tenant {requested!r}."})
        return Access(tenant)
    admin_of = administered_tenants(user)
    if requested:
        tenant = tenant_named(requested, among=admin_of)
        if tenant is None:
            raise PermissionDenied("You are not an admin of that tenant.")
        return Access(tenant)
    tenants = list(admin_of[:2])
    if not tenants:
        raise PermissionDenied("Only tenant admins can use webhook settings.")
    if len(tenants) > 1:
        raise ValidationError({"tenant": "You are an admin of several tenants: name one in the X-Tenant header."})
    return Access(tenants[0])
