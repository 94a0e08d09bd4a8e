"""Events in the admin: read-only, each with the deliveries it made."""

from django.contrib import admin

from events.models import Event
from webhookhub.web.admin.delivery_admin import DeliveryInline
from webhookhub.web.admin.scoping import ReadOnlyTenantScopedAdmin


@admin.register(Event)
class EventAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ["id", "event_type", "tenant", "source", "ordering_key", "created_at"]
    list_filter = ["source", "event_type", ("tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "idempotency_key", "=ordering_key"]
    date_hierarchy = "created_at"
    fields = [
        "id",
        "tenant",
        "event_type",
        "source",
        "idempotency_key",
        "ordering_key",
        "occurred_at",
        "created_at",
        "body",
    ]
    inlines = [DeliveryInline]
