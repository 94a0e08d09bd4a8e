"""API keys in the admin: a tenant admin creates and revokes their tenant's keys."""

from django.contrib import admin, messages

from accounts.models import ApiKey
from accounts.services import create_api_key, revoke_api_key
from webhookhub.web.admin.scoping import TenantScopedAdmin


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
