"""Deliveries in the admin: read-only, with their attempts, resend and cancel; and the inline that lists an
event's deliveries on its page."""

import json

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from deliveries.models import Delivery
from deliveries.services.actions import cancel_pending, resend
from webhookhub.web.admin.scoping import ReadOnlyTenantScopedAdmin
from webhookhub.web.request_access import is_tenant_admin


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyTenantScopedAdmin):
    tenant_field = "endpoint__tenant"
    list_display = [
        "id",
        "status",
        "endpoint",
        "event_type",
        "attempt_count",
        "last_status_code",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "event__event_type", ("endpoint__tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["event__id"]
    date_hierarchy = "created_at"
    list_select_related = ["event", "endpoint"]
    fields = readonly_fields = (
        "event_link",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "completed_at",
        "attempts_table",
    )
    actions = ["resend_now", "cancel_pending"]

    @admin.display(description="event type")
    def event_type(self, delivery: Delivery) -> str:
        return delivery.event.event_type_id

    @admin.display(description="event")
    def event_link(self, delivery: Delivery) -> str:
        url = reverse("admin:events_event_change", args=[delivery.event_id])
        return format_html('<a href="{}">{}</a>', url, delivery.event_id)

    @admin.display(description="attempts")
    def attempts_table(self, delivery: Delivery) -> str:
        """Every attempt in a table that fits the page; headers and body fold out under each."""
        attempts = list(delivery.attempts.order_by("number"))
        if not attempts:
            return "none yet"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td><td>{}</td><td>"
            "<details><summary>request headers</summary><pre>{}</pre></details>"
            "<details><summary>response headers</summary><pre>{}</pre></details>"
            "<details><summary>response body</summary><pre>{}</pre></details></td></tr>",
            (
                (
                    attempt.number,
                    f"{attempt.started_at:%Y-%m-%d %H:%M:%S} UTC",
                    attempt.duration_ms,
                    attempt.status_code or attempt.error or "-",
                    attempt.get_outcome_display(),
                    _pretty(attempt.request_headers),
                    _pretty(attempt.response_headers) if attempt.status_code else "no response",
                    attempt.response_body or ("empty body" if attempt.status_code else "no response"),
                )
                for attempt in attempts
            ),
        )
        head = format_html(
            "<tr><th style='width:3rem'>#</th><th style='width:11rem'>started</th><th style='width:6rem'>took</th>"
            "<th>status or error</th><th style='width:7rem'>outcome</th><th>details</th></tr>"
        )
        return format_html('<table class="attempt-table"><thead>{}</thead><tbody>{}</tbody></table>', head, rows)

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


def _pretty(headers: dict) -> str:
    return json.dumps(headers, indent=2, sort_keys=True) if headers else "none"


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = readonly_fields = ("endpoint", "status", "attempt_count", "last_status_code", "completed_at")
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)
