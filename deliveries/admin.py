from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from deliveries import admin_endpoints  # noqa: F401  (registers the Endpoint admin)
from deliveries.models import Attempt, Delivery
from deliveries.services.operations import cancel_pending, resend
from events.admin import EventAdminBase
from events.models import Event
from webhookhub.accounts.admin_scoping import ReadOnlyTenantScopedAdmin, is_tenant_admin


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "duration_ms", "status_code", "outcome", "error", "request_headers",
              "response_headers", "response_body"]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyTenantScopedAdmin):
    tenant_field = "endpoint__tenant"
    list_display = ["id", "status", "endpoint", "event_type", "attempt_count", "last_status_code", "created_at",
                    "completed_at"]  # fmt: skip
    list_filter = ["status", "event__event_type", ("endpoint__tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["event__id"]
    date_hierarchy = "created_at"
    list_select_related = ["event", "endpoint"]
    fields = ["event_link", "endpoint", "status", "attempt_count", "next_attempt_at", "last_status_code",
              "last_error", "created_at", "completed_at"]  # fmt: skip
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["resend_now", "cancel_pending"]

    @admin.display(description="event type")
    def event_type(self, delivery: Delivery) -> str:
        return delivery.event.event_type_id

    @admin.display(description="event")
    def event_link(self, delivery: Delivery) -> str:
        url = reverse("admin:events_event_change", args=[delivery.event_id])
        return format_html('<a href="{}">{}</a>', url, delivery.event_id)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Resend now")
    def resend_now(self, request, queryset):
        for delivery in queryset:
            resend(delivery)
        messages.success(request, f"{queryset.count()} delivery(ies) will be sent again now.")

    @admin.action(description="Cancel pending")
    def cancel_pending(self, request, queryset):
        count = cancel_pending(queryset)
        messages.success(request, f"Cancelled {count} pending delivery(ies).")


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ["endpoint", "status", "attempt_count", "last_status_code", "completed_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)


@admin.register(Event)
class EventAdmin(EventAdminBase):
    inlines = [DeliveryInline]
