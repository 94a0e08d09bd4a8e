"""Django admin, tenant-scoped: staff see only tenants where they are admins; superusers see all.

Managers and users (even with is_staff) get no webhook pages: the index lists none and
direct URLs answer 403. Every queryset and foreign-key choice is limited to the tenants
the user administers.
"""

from django.contrib import admin

from accounts.models import Tenant
from webhookhub.web.request_access import administered_tenants, is_tenant_admin


class TenantScopedAdmin(admin.ModelAdmin):
    """``tenant_field`` is the path from the model to its Tenant."""

    tenant_field = "tenant"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.tenant_field}__in": administered_tenants(request)})

    def get_list_display(self, request):
        """The tenant column only for those who see more than one tenant."""
        columns = super().get_list_display(request)
        if self.tenant_field in columns and not request.user.is_superuser and administered_tenants(request).count() < 2:
            return [column for column in columns if column != self.tenant_field]
        return columns

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Tenant:
            kwargs["queryset"] = administered_tenants(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request) -> bool:
        return is_tenant_admin(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)

    def has_add_permission(self, request) -> bool:
        return is_tenant_admin(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)


class ReadOnlyTenantScopedAdmin(TenantScopedAdmin):
    """Logs: visible to tenant admins, never edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
