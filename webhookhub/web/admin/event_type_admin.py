"""The event-type catalog in the admin: tenant admins read it, platform superusers edit it."""

from django.contrib import admin

from events.models import EventType
from webhookhub.web.request_access import is_tenant_admin


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
