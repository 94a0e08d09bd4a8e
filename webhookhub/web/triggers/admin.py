"""Trigger admin: the form checks the mapping against the sample, the key is shown once, requests are listed."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from events.models import EventType, Trigger, TriggerRequest
from events.triggers import (
    MAX_RATE_LIMIT_PER_MINUTE,
    create_trigger,
    rotate_trigger_key,
    update_trigger,
    validate_trigger_mapping,
)
from webhookhub.web.admin.fields import JSONTextField
from webhookhub.web.admin.scoping import ReadOnlyTenantScopedAdmin, TenantScopedAdmin

RECENT_REQUESTS_SHOWN = 20


class TriggerForm(forms.ModelForm):
    sample = JSONTextField(
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text="An example request body (a JSON object). Save to list its paths below.",
    )
    mapping = JSONTextField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
        help_text='Paths of the sample to fields of the event data, e.g. {"contact.phone": "phone"}. '
        'Fields of the body that are not mapped are kept under "unmapped".',
    )

    rate_limit_per_minute = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_RATE_LIMIT_PER_MINUTE,
        help_text="Requests per minute; the deployment default when empty.",
    )

    class Meta:
        model = Trigger
        fields = [
            "tenant",
            "name",
            "event_type",
            "enabled",
            "sample",
            "identifier",
            "ordering_key_path",
            "mapping",
            "rate_limit_per_minute",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "event_type" in self.fields:
            self.fields["event_type"].queryset = EventType.objects.filter(archived=False)

    def clean(self):
        cleaned = super().clean()
        if {"sample", "identifier"} <= cleaned.keys():
            try:
                validate_trigger_mapping(
                    sample=cleaned["sample"],
                    mapping=cleaned.get("mapping") or {},
                    identifier=cleaned["identifier"],
                    ordering_key_path=cleaned.get("ordering_key_path") or "",
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        return cleaned

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "event_type": data["event_type"].pk,
            "enabled": data["enabled"],
            "sample": data["sample"],
            "identifier": data["identifier"],
            "ordering_key_path": data.get("ordering_key_path") or "",
            "mapping": data.get("mapping") or {},
            "rate_limit_per_minute": data["rate_limit_per_minute"],
        }


@admin.register(Trigger)
class TriggerAdmin(TenantScopedAdmin):
    form = TriggerForm
    list_display = ["name", "tenant", "event_type", "enabled", "key_prefix", "created_at"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "enabled", "event_type"]
    search_fields = ["name", "id"]
    readonly_fields = [
        "id",
        "capture_url",
        "key_prefix",
        "available_paths",
        "recent_requests",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["id", "tenant", "name", "event_type", "enabled", "capture_url", "key_prefix"]}),
        ("Map fields", {"fields": ["sample", "available_paths", "identifier", "mapping", "ordering_key_path"]}),
        ("Limits", {"fields": ["rate_limit_per_minute"]}),
        ("Requests", {"fields": ["recent_requests", "created_at", "updated_at"]}),
    ]
    actions = ["rotate_key", "enable", "disable"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    @admin.display(description="URL to POST to")
    def capture_url(self, trigger: Trigger) -> str:
        if not trigger.pk:
            return "- (shown after saving)"
        path = reverse("trigger-capture", args=[trigger.pk])
        return format_html(
            "<code>POST {}</code> on this server, with <code>Authorization: Bearer &lt;key&gt;</code>", path
        )

    @admin.display(description="available paths")
    def available_paths(self, trigger: Trigger) -> str:
        if not trigger.sample_paths:
            return "- (save a sample to list its paths)"
        return format_html_join(" ", "<code>{}</code>", ((path,) for path in trigger.sample_paths))

    @admin.display(description="recent requests")
    def recent_requests(self, trigger: Trigger) -> str:
        if not trigger.pk:
            return "-"
        rows = trigger.requests.all()[:RECENT_REQUESTS_SHOWN]
        if not rows:
            return "- (none yet)"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (
                    f"{r.received_at:%Y-%m-%d %H:%M:%S}",
                    r.source_ip or "",
                    r.status_code,
                    r.detail or r.outcome,
                    r.event_id or "",
                    r.body_excerpt[:200],
                )
                for r in rows
            ),
        )
        all_url = reverse("admin:events_triggerrequest_changelist") + f"?trigger__id__exact={trigger.pk}"
        return format_html(
            "<table><tr><th>time (UTC)</th><th>source IP</th><th>status</th><th>outcome</th><th>event</th>"
            '<th>body</th></tr>{}</table><p><a href="{}">All requests of this trigger</a></p>',
            body,
            all_url,
        )

    def save_model(self, request, obj, form, change):
        """Through the services, as the API does; the form has already run their validation."""
        if change:
            update_trigger(trigger=Trigger.objects.get(pk=obj.pk), **form.service_kwargs())
            return
        created = create_trigger(tenant=form.cleaned_data["tenant"], created_by=request.user, **form.service_kwargs())
        obj.pk = created.trigger.pk
        obj._state.adding = False
        messages.warning(request, f"API key for this trigger (shown once, only its hash is kept): {created.api_key}")

    @admin.action(description="Rotate API key (the old one stops working)")
    def rotate_key(self, request, queryset):
        for trigger in queryset:
            key = rotate_trigger_key(trigger=trigger)
            messages.warning(request, f"New API key for {trigger} (shown once): {key}")

    @admin.action(description="Enable")
    def enable(self, request, queryset):
        for trigger in queryset:
            update_trigger(trigger=trigger, enabled=True)
        messages.success(request, f"Enabled {queryset.count()} trigger(s).")

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        for trigger in queryset:
            update_trigger(trigger=trigger, enabled=False)
        messages.success(request, f"Disabled {queryset.count()} trigger(s).")


@admin.register(TriggerRequest)
class TriggerRequestAdmin(ReadOnlyTenantScopedAdmin):
    tenant_field = "trigger__tenant"
    list_display = ["received_at", "trigger", "source_ip", "status_code", "outcome", "detail", "event"]
    list_filter = ["outcome", "status_code", ("trigger", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["trigger__id", "event__id", "source_ip"]
    list_select_related = ["trigger", "event"]
    date_hierarchy = "received_at"
    fields = readonly_fields = (
        "trigger",
        "received_at",
        "source_ip",
        "status_code",
        "outcome",
        "detail",
        "event",
        "body_excerpt",
    )
