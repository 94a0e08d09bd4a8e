from django.contrib import admin

from accounts.admin_scoping import ReadOnlyTenantScopedAdmin, is_tenant_admin
from events import admin_triggers  # noqa: F401  (registers the Trigger admin)
from events.models import EventType


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    """The catalog: tenant admins read it, platform superusers edit it."""

    list_display = ["name", "description", "archived"]
    list_filter = ["archived"]
    search_fields = ["name", "description"]

    def has_module_permission(self, request) -> bool:
        return is_tenant_admin(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # events refer to their type; archive it instead


class EventAdminBase(ReadOnlyTenantScopedAdmin):
    list_display = ["id", "event_type", "tenant", "source", "created_at"]
    list_filter = ["source", "event_type", ("tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "idempotency_key"]
    date_hierarchy = "created_at"
    fields = ["id", "tenant", "event_type", "source", "idempotency_key", "occurred_at", "created_at", "body"]
