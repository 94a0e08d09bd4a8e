"""Deliveries in the admin: read-only, with the body they send, their attempts, resend and cancel; and the inline
that lists an event's deliveries on its page."""

import json
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from deliveries.models import Delivery
from deliveries.selectors import held_back_by
from deliveries.services.actions import cancel_pending, resend
from webhookhub.web.admin.scoping import ReadOnlyTenantScopedAdmin
from webhookhub.web.payload_pages import shown_body
from webhookhub.web.request_access import is_tenant_admin


class KeyedFilter(admin.SimpleListFilter):
    """Deliveries of keyed events to ordered endpoints (sent one at a time per key), or the others."""

    title = "ordering key"
    parameter_name = "keyed"

    def lookups(self, request, model_admin):
        return [("yes", "with a key"), ("no", "without")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(ordering_key__isnull=self.value() == "no")
        return queryset


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyTenantScopedAdmin):
    tenant_field = "endpoint__tenant"
    list_display = [
        "id",
        "status",
        "endpoint",
        "event_type",
        "ordering_key",
        "sequence",
        "attempt_count",
        "last_status_code",
        "created_at",
        "completed_at",
    ]
    list_filter = [
        "status",
        KeyedFilter,
        "event__event_type",
        ("endpoint__tenant", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["event__id", "=ordering_key"]
    date_hierarchy = "created_at"
    list_select_related = ["event", "endpoint"]
    fields = readonly_fields = (
        "event_link",
        "endpoint",
        "status",
        "key_link",
        "sequence",
        "waiting_behind",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "completed_at",
        "body_sent",
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

    @admin.display(description="ordering key")
    def key_link(self, delivery: Delivery) -> str:
        """The key, linking to the endpoint's deliveries with it."""
        if delivery.ordering_key is None:
            return "-"
        query = urlencode({"endpoint__id__exact": delivery.endpoint_id, "ordering_key": delivery.ordering_key})
        url = f"{reverse('admin:deliveries_delivery_changelist')}?{query}"
        return format_html('<a href="{}">{}</a>', url, delivery.ordering_key)

    @admin.display(description="held back")
    def waiting_behind(self, delivery: Delivery) -> str:
        """The delivery of the same endpoint and key this pending one waits for (so of the same tenant)."""
        ahead = held_back_by(delivery, now=timezone.now())
        if ahead is None:
            return "-"
        url = reverse("admin:deliveries_delivery_change", args=[ahead.pk])
        return format_html(
            'Waiting behind <a href="{}" id="waiting-behind">delivery {}</a> (number {} of this key, {} attempt(s) '
            "so far): it is sent once that one succeeds, fails for good or is cancelled.",
            url,
            ahead.pk,
            ahead.sequence,
            ahead.attempt_count,
        )

    @admin.display(description="body as sent")
    def body_sent(self, delivery: Delivery) -> str:
        """The body every attempt sends (its endpoint's payload format; a Heymarket token masked)."""
        return format_html('<pre class="wrapped" id="delivery-body">{}</pre>', shown_body(delivery))

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
        head = mark_safe(  # noqa: S308 - fixed markup
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
    fields = readonly_fields = ("endpoint", "status", "sequence", "attempt_count", "last_status_code", "completed_at")
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)
