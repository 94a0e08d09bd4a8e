"""Endpoint admin: health at a glance, write-only secrets, the payload format (its Heymarket token shown once), the
signature scheme with its public keys and their rotation, mutual TLS with its certificate's expiry, a working
"Send test event" button and a preview of what it would send."""

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from deliveries.models import Delivery
from deliveries.numbers.stats import attempt_subqueries
from deliveries.numbers.windows import WINDOWS
from deliveries.selectors import concurrency_text, scheduling_state
from deliveries.services.actions import send_test_event
from deliveries.services.enabling import enable_after_test
from events.exceptions import PublishError
from events.models import EventType
from subscriptions.certificates import expiry_warning
from subscriptions.models import ALL_EVENT_TYPES, Endpoint, EndpointHealth, PayloadFormat
from subscriptions.payloads import heymarket_webhook_id, masked_token
from subscriptions.selectors import public_keys
from subscriptions.services import (
    ADMIN_DISABLED_REASON,
    create_endpoint,
    disable_endpoint,
    primary_secret,
    rotate_secret,
    rotate_signing_key,
    rotate_verification_token,
    update_endpoint,
)
from subscriptions.warnings import outlook as disable_outlook
from webhookhub.web.admin.endpoint_forms import EndpointForm, TestEventForm
from webhookhub.web.admin.scoping import TenantScopedAdmin
from webhookhub.web.payload_pages import preview_context


class EventTypeFilter(admin.SimpleListFilter):
    """Endpoints that receive a given type (subscribed to it, or to "*")."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in EventType.objects.filter(archived=False).values_list("name", flat=True)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        # JSON text of the list, so this works on PostgreSQL and SQLite alike.
        return queryset.filter(Q(event_types__icontains=f'"{self.value()}"') | Q(event_types__icontains='"*"'))


# An Endpoint from this admin's queryset, with its health annotations (_last_status, _streak, ...).
ListedEndpoint = Any


def _shortened(text: str, most: int) -> str:
    """At most ``most`` characters in the table; all of it on hover."""
    return format_html('<span title="{}">{}</span>', text, text if len(text) <= most else f"{text[: most - 3]}...")


@admin.register(Endpoint)
class EndpointAdmin(TenantScopedAdmin):
    form = EndpointForm
    change_form_template = "admin/subscriptions/endpoint/change_form.html"
    list_display = [
        "endpoint_summary",
        "tenant",
        "event_types_summary",
        "enabled",
        "last_status",
        "success_rate_24h",
        "failed_in_a_row",
        "scheduling_now",
        "why_disabled",
    ]
    list_filter = [
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "enabled",
        "ordered",
        "payload_format",
        "signature_scheme",
        EventTypeFilter,
    ]
    search_fields = ["name", "url", "id", "description"]
    readonly_fields = [
        "id",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "scheduling",
        "created_at",
        "updated_at",
        "verification_token_shown",
        "heymarket_id",
        "public_keys_shown",
        "tls_certificate_expiry",
    ]
    fieldsets = [
        (None, {"fields": ["id", "tenant", "name", "url", "description", "event_types", "enabled"]}),
        (
            "Authentication (write-only)",
            {
                "fields": [
                    "auth_type",
                    "auth_token",
                    "auth_header",
                    "auth_value",
                    "auth_username",
                    "auth_password",
                    "auth_token_url",
                    "auth_client_id",
                    "auth_client_secret",
                    "auth_scope",
                    "auth_audience",
                    "auth_client_auth",
                ]
            },
        ),
        ("Signatures", {"fields": ["signature_scheme", "public_keys_shown"]}),
        (
            "Mutual TLS (the key is write-only)",
            {
                "fields": [
                    "tls_client_certificate",
                    "tls_client_key",
                    "tls_certificate_expiry",
                    "tls_ca_certificate",
                ]
            },
        ),
        (
            "Delivery",
            {
                "fields": [
                    "custom_headers_text",
                    "clear_custom_headers",
                    "timeout_s",
                    "retry_schedule",
                    "auto_disable_after_seconds",
                    "rate_limit_per_s",
                    "max_in_flight",
                    "adaptive_concurrency",
                    "filter",
                    "ordered",
                ]
            },
        ),
        ("Payload", {"fields": ["payload_format", "payload_shape", "verification"]}),
        (
            "Health",
            {"fields": ["disabled_reason", "disabled_at", "failing_since", "scheduling", "created_at", "updated_at"]},
        ),
    ]
    actions = ["enable", "disable", "rotate", "rotate_key", "send_test"]

    def get_readonly_fields(self, request, obj=None):
        # An endpoint stays with its tenant (its secrets, deliveries and history belong there).
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        """A Heymarket endpoint's page also shows its webhook id and its token's mask."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.payload_format != PayloadFormat.HEYMARKET:
            return fieldsets
        heymarket = ["heymarket_id", "verification_token_shown"]
        return [
            (name, {**options, "fields": [*options["fields"], *heymarket]}) if name == "Payload" else (name, options)
            for name, options in fieldsets
        ]

    @admin.display(description="Heymarket webhook id")
    def heymarket_id(self, endpoint: Endpoint) -> str:
        """The number its Heymarket bodies carry as "id"."""
        if endpoint.payload_format != PayloadFormat.HEYMARKET:
            return "-"
        return str(heymarket_webhook_id(endpoint.pk))

    @admin.display(description="verification token")
    def verification_token_shown(self, endpoint: Endpoint) -> str:
        """Only its mask: the token is shown in full once, when it is issued."""
        if not endpoint.verification_token:
            return "-"
        return f"{masked_token(endpoint)} (shown in full once, when it was issued; rotate it for a new one)"

    @admin.display(description="public keys (v1a)")
    def public_keys_shown(self, endpoint: Endpoint) -> str:
        """The whpk_ keys receivers verify v1a signatures with, primary first; a rotated-out key with the end of
        its grace. The private keys never leave the platform."""
        if not endpoint.pk:
            return "Made with the endpoint."
        keys = public_keys(endpoint, now=timezone.now())
        if not keys:
            return "-"
        return format_html_join(
            "",
            '<div class="public-key"><code>{}</code> <span class="help">{}</span></div>',
            ((key.public_key, _key_status(key.expires_at)) for key in keys),
        )

    @admin.display(description="client certificate expires")
    def tls_certificate_expiry(self, endpoint: Endpoint) -> str:
        """When the stored client certificate expires, with a warning from 14 days ahead."""
        expires_at = endpoint.tls_client_certificate_expires_at
        if expires_at is None:
            return "-"
        warning = expiry_warning(expires_at, now=timezone.now())
        if warning is None:
            return f"{expires_at:%Y-%m-%d %H:%M} UTC"
        return format_html('<strong class="tls-expiry-warning">{}</strong>', warning)

    def get_queryset(self, request):
        """Health columns from the recorder's rollups (read by ``stats``) and health rows: a few rows per
        endpoint, never the log."""
        day = attempt_subqueries(WINDOWS["24h"], timezone.now())
        return (
            super()
            .get_queryset(request)
            .select_related("tenant")
            .annotate(
                _last_status=F("health__last_status_code"),
                _last_error=F("health__last_error"),
                _streak=F("health__failed_in_a_row"),
                _circuit_open_since=F("schedule__circuit_opened_at"),
                _paused_until=F("schedule__paused_until"),
                _pause_reason=F("schedule__pause_reason"),
                _next_probe_at=F("schedule__next_probe_at"),
                _concurrency_limit=F("schedule__concurrency_limit"),
                _limited_by=F("schedule__concurrency_limited_by"),
                _limited_at=F("schedule__concurrency_limited_at"),
                _attempts_24h=day["attempts"],
                _successes_24h=day["successes"],
            )
        )

    @admin.display(description="scheduling")
    def scheduling_now(self, endpoint: "ListedEndpoint") -> str:
        """What holds it back (disabled, an open circuit, a pause), else how many it is sent at a time."""
        if not endpoint.enabled:
            return "disabled"
        if endpoint._circuit_open_since is not None:
            probe = f", next probe {endpoint._next_probe_at:%H:%M:%S} UTC" if endpoint._next_probe_at else ""
            return f"circuit open since {endpoint._circuit_open_since:%Y-%m-%d %H:%M} UTC{probe}"
        if endpoint._paused_until is not None and endpoint._paused_until > timezone.now():
            return f"paused until {endpoint._paused_until:%H:%M:%S} UTC ({endpoint._pause_reason})"
        return concurrency_text(
            adaptive=endpoint.adaptive_concurrency,
            ceiling=endpoint.max_in_flight,
            limit=endpoint._concurrency_limit,
            limited_by=endpoint._limited_by or "",
            limited_at=endpoint._limited_at,
        )

    @admin.display(description="scheduling now")
    def scheduling(self, endpoint: Endpoint) -> str:
        if not endpoint.pk:
            return "-"
        return scheduling_state(endpoint, now=timezone.now()).summary

    @admin.display(description="endpoint", ordering="name")
    def endpoint_summary(self, endpoint: Endpoint) -> str:
        """The name over the URL (the URL alone when unnamed), cut to one line so the health columns fit."""
        if not endpoint.name:
            return format_html('<span class="endpoint-url" title="{}">{}</span>', endpoint.url, endpoint.url)
        return format_html(
            '<strong>{}</strong><small class="endpoint-url" title="{}">{}</small>',
            endpoint.name,
            endpoint.url,
            endpoint.url,
        )

    @admin.display(description="event types")
    def event_types_summary(self, endpoint: Endpoint) -> str:
        types = list(endpoint.event_types or [])
        if ALL_EVENT_TYPES in types:
            return "every type"
        shown = ", ".join(types[:2])
        return f"{shown} +{len(types) - 2} more" if len(types) > 2 else shown or "-"

    @admin.display(description="last status")
    def last_status(self, endpoint: "ListedEndpoint") -> str:
        if endpoint._last_status:
            return str(endpoint._last_status)
        if not endpoint._last_error:
            return "-"
        return _shortened(endpoint._last_error, 60)

    @admin.display(description="disabled because")
    def why_disabled(self, endpoint: Endpoint) -> str:
        return _shortened(endpoint.disabled_reason, 70) if endpoint.disabled_reason else "-"

    @admin.display(description="failing since")
    def failing_since(self, endpoint: Endpoint) -> str:
        """The auto-disable clock: the first failed request since the last success (or the last enable)."""
        health = EndpointHealth.objects.filter(endpoint=endpoint).first()
        if health is None or health.failing_since is None:
            return "-"
        ahead = disable_outlook(endpoint, health, now=timezone.now())
        if ahead is None:  # disabled already
            return f"{health.failing_since:%Y-%m-%d %H:%M} UTC"
        return (
            f"{health.failing_since:%Y-%m-%d %H:%M} UTC: will be disabled in {ahead.disabled_in_words} unless it "
            f"answers ({ahead.disable_at:%Y-%m-%d %H:%M} UTC)"
        )

    @admin.display(description="success 24 h")
    def success_rate_24h(self, endpoint: "ListedEndpoint") -> str:
        if not endpoint._attempts_24h:
            return "-"
        return f"{100 * endpoint._successes_24h / endpoint._attempts_24h:.0f}% of {endpoint._attempts_24h}"

    @admin.display(description="failed in a row")
    def failed_in_a_row(self, endpoint: "ListedEndpoint") -> int:
        return endpoint._streak or 0

    def save_model(self, request, obj, form, change):
        """Through the services, as the API does; the form has already run their validation."""
        if change:
            # The form has already copied its values onto ``obj``; the service compares with the stored row.
            endpoint = update_endpoint(endpoint=Endpoint.objects.get(pk=obj.pk), **form.service_kwargs())
            if endpoint.issued_verification_token:  # the first switch to Heymarket
                _show_token_once(request, endpoint.issued_verification_token)
            return
        tenant = form.cleaned_data["tenant"]
        created = create_endpoint(tenant=tenant, created_by=request.user, **form.service_kwargs())
        obj.pk = created.endpoint.pk
        obj._state.adding = False
        messages.warning(request, f"Signing secret: {created.secret} (reveal it again from the endpoint page).")
        if created.verification_token:
            _show_token_once(request, created.verification_token)

    # --- actions -------------------------------------------------------------------------------
    @admin.action(description="Enable (after a test event)")
    def enable(self, request, queryset):
        """Each disabled endpoint is sent a test event and enabled only if it answers 2xx; one message each."""
        for endpoint in queryset:
            _enable_and_report(request, endpoint)

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        for endpoint in queryset:
            disable_endpoint(endpoint=endpoint, reason=ADMIN_DISABLED_REASON, notify=False)
        messages.success(request, f"Disabled {queryset.count()} endpoint(s).")

    @admin.action(description="Rotate signing secret (the old one signs 24 h more)")
    def rotate(self, request, queryset):
        for endpoint in queryset:
            rotate_secret(endpoint=endpoint)
        messages.success(request, f"Rotated {queryset.count()} secret(s). Reveal the new one on each endpoint page.")

    @admin.action(description="Rotate signing key (v1a; the old one signs 24 h more)")
    def rotate_key(self, request, queryset):
        for endpoint in queryset:
            rotate_signing_key(endpoint=endpoint)
        messages.success(
            request, f"Rotated {queryset.count()} signing key(s). Each endpoint page shows its new public key."
        )

    @admin.action(description="Send test event")
    def send_test(self, request, queryset):
        for endpoint in queryset:
            send_test_event(endpoint=endpoint)
        messages.success(request, f"Sent a test event to {queryset.count()} endpoint(s); see Deliveries.")

    # --- pages ---------------------------------------------------------------------------------
    def get_urls(self):
        own = [
            path(
                "<str:object_id>/reveal-secret/",
                self.admin_site.admin_view(self.reveal_secret_view),
                name="subscriptions_endpoint_reveal_secret",
            ),
            path(
                "<str:object_id>/enable/",
                self.admin_site.admin_view(self.enable_view),
                name="subscriptions_endpoint_enable",
            ),
            path(
                "<str:object_id>/send-test/",
                self.admin_site.admin_view(self.send_test_view),
                name="subscriptions_endpoint_send_test",
            ),
            path(
                "<str:object_id>/rotate-verification-token/",
                self.admin_site.admin_view(self.rotate_verification_token_view),
                name="subscriptions_endpoint_rotate_verification_token",
            ),
            path(
                "<str:object_id>/rotate-signing-key/",
                self.admin_site.admin_view(self.rotate_signing_key_view),
                name="subscriptions_endpoint_rotate_signing_key",
            ),
            path(
                "<str:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="subscriptions_endpoint_preview",
            ),
            path(
                "<str:object_id>/test-result/<int:delivery_id>/",
                self.admin_site.admin_view(self.test_result_view),
                name="subscriptions_endpoint_test_result",
            ),
        ]
        return own + super().get_urls()

    def _endpoint(self, request: HttpRequest, object_id: str) -> Endpoint:
        if not self.has_change_permission(request):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=object_id)

    def _page(self, request, endpoint, template, **context) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": endpoint,
            "title": f"{endpoint} — {context['heading']}",
            **context,
        }
        return TemplateResponse(request, template, context)

    def reveal_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._endpoint(request, object_id)
        if request.method != "POST":  # revealed only on an explicit click (a POST with CSRF)
            return HttpResponseRedirect(reverse("admin:subscriptions_endpoint_change", args=[endpoint.pk]))
        return self._page(
            request,
            endpoint,
            "admin/subscriptions/endpoint/secret.html",
            heading="signing secret",
            secret=primary_secret(endpoint),
        )

    def rotate_verification_token_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A new Heymarket verification token, shown on this page only (an explicit POST with CSRF)."""
        endpoint = self._endpoint(request, object_id)
        if request.method != "POST" or endpoint.payload_format != PayloadFormat.HEYMARKET:
            return HttpResponseRedirect(reverse("admin:subscriptions_endpoint_change", args=[endpoint.pk]))
        return self._page(
            request,
            endpoint,
            "admin/subscriptions/endpoint/verification_token.html",
            heading="new verification token",
            token=rotate_verification_token(endpoint=endpoint),
            webhook_id=heymarket_webhook_id(endpoint.pk),
        )

    def rotate_signing_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A new primary v1a key (an explicit POST with CSRF); the page lists it and the old key's grace."""
        endpoint = self._endpoint(request, object_id)
        if request.method == "POST":
            new_key = rotate_signing_key(endpoint=endpoint)
            messages.success(
                request,
                f"New signing key: its public key is {new_key}. The previous key keeps signing until the end of its "
                "grace period (below): give receivers the new public key before then.",
            )
        return HttpResponseRedirect(reverse("admin:subscriptions_endpoint_change", args=[endpoint.pk]))

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A dry run on the latest events, under the saved settings or ones to try; nothing is sent or saved."""
        endpoint = self._endpoint(request, object_id)
        return self._page(
            request,
            endpoint,
            "admin/subscriptions/endpoint/preview.html",
            heading="preview",
            **preview_context(endpoint, request.GET),
        )

    def enable_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The change page's enable buttons (POST with CSRF): after a test event, or with ``force`` without one."""
        endpoint = self._endpoint(request, object_id)
        if request.method == "POST":
            _enable_and_report(request, endpoint, force=request.POST.get("force") == "1")
        return HttpResponseRedirect(reverse("admin:subscriptions_endpoint_change", args=[endpoint.pk]))

    def send_test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._endpoint(request, object_id)
        form = TestEventForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            example = EventType.objects.get(name=form.cleaned_data["example"]).example
            try:
                delivery = send_test_event(endpoint=endpoint, data=example)
            except PublishError as exc:
                form.add_error(None, str(exc))
            else:
                return HttpResponseRedirect(
                    reverse("admin:subscriptions_endpoint_test_result", args=[endpoint.pk, delivery.pk])
                )
        return self._page(
            request, endpoint, "admin/subscriptions/endpoint/send_test.html", heading="send test event", form=form
        )

    def test_result_view(self, request: HttpRequest, object_id: str, delivery_id: int) -> HttpResponse:
        endpoint = self._endpoint(request, object_id)
        delivery = get_object_or_404(Delivery.objects.select_related("event"), pk=delivery_id, endpoint=endpoint)
        attempt = delivery.attempts.order_by("-number").first()
        waiting = attempt is None and timezone.now() - delivery.created_at < timedelta(seconds=60)
        return self._page(
            request,
            endpoint,
            "admin/subscriptions/endpoint/test_result.html",
            heading="test event result",
            delivery=delivery,
            attempt=attempt,
            waiting=waiting,
            delivery_url=reverse("admin:deliveries_delivery_change", args=[delivery.pk]),
        )


def _enable_and_report(request: HttpRequest, endpoint: Endpoint, *, force: bool = False) -> None:
    """Enable through ``enable_after_test`` and say what happened in one admin message: enabled (after which
    answer), or why not, with the test's status or error."""
    if endpoint.enabled:
        messages.info(request, f"{endpoint}: already enabled.")
        return
    result = enable_after_test(endpoint, force=force)
    if result.enabled and result.tested:
        messages.success(request, f"{endpoint}: the test event got {result.answer}; the endpoint is enabled.")
    elif result.enabled:
        messages.warning(request, f"{endpoint}: enabled without testing (forced).")
    else:
        messages.error(
            request,
            f"{endpoint}: not enabled, the test event failed ({result.answer}). It stays disabled; fix it and try "
            'again, or use "Enable without testing (force)" on its page.',
        )


def _key_status(expires_at) -> str:
    if expires_at is None:
        return "primary: signs now"
    return f"rotated out: signs until {expires_at:%Y-%m-%d %H:%M} UTC"


def _show_token_once(request: HttpRequest, token: str) -> None:
    messages.warning(
        request,
        f"Heymarket verification token: {token} (shown this once: Heymarket receivers find it in the body; "
        "the endpoint page shows only a mask, and can rotate it).",
    )
