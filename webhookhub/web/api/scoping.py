"""Tenant scoping for viewsets: querysets, object lookups and creation all go through ``request.access``."""

from typing import Any

from rest_framework.exceptions import ValidationError

from accounts.models import Tenant


class TenantScopedMixin:
    """``tenant_field`` names the path from the model to its Tenant (e.g. "endpoint__tenant")."""

    request: Any  # the viewset's request, with ``access`` set by the permission check
    tenant_field = "tenant"
    lookup_value_regex = r"[^/.\x00]+"  # a NUL in an id is a 404 here, not a database error

    def scope(self, queryset):
        access = getattr(self.request, "access", None)
        if access is None:  # schema generation: no request went through the permission check
            return queryset.none()
        return queryset if access.tenant is None else queryset.filter(**{self.tenant_field: access.tenant})

    def tenant_for_write(self) -> Tenant:
        tenant = self.request.access.tenant
        if tenant is None:
            raise ValidationError({"tenant": "Name the tenant to act for in the X-Tenant header."})
        return tenant
