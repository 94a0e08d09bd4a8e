from django.contrib import admin, messages

from accounts.admin_scoping import TenantScopedAdmin
from accounts.models import ApiKey, Membership, Tenant
from accounts.services import create_api_key, revoke_api_key


class SuperuserOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    has_add_permission = has_module_permission

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)


@admin.register(Tenant)
class TenantAdmin(SuperuserOnlyAdmin):
    list_display = ["slug", "name", "id", "created_at"]
    search_fields = ["slug", "name"]


@admin.register(Membership)
class MembershipAdmin(SuperuserOnlyAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "user__email", "tenant__slug"]
    autocomplete_fields = ["tenant"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    """Only the prefix is ever shown; the full key appears once, in the message after creation."""

    list_display = ["name", "tenant", "prefix", "role", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "role"]
    search_fields = ["name", "prefix"]
    fields = ["tenant", "name", "role", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant", "role"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        created = create_api_key(tenant=obj.tenant, name=obj.name, role=obj.role)
        obj.pk, obj.prefix = created.api_key.pk, created.api_key.prefix
        obj._state.adding = False
        messages.warning(request, f"The new API key is {created.key} — copy it now, it will not be shown again.")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for api_key in queryset:
            revoke_api_key(api_key=api_key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")
