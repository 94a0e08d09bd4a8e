"""The event-type catalog in the admin: tenant admins read it (schema and example pretty-printed), platform
superusers edit it, its schema and schema mode included."""

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from events.models import EventType
from events.schemas import mode_of, schema_problem
from ground.conf import setting
from webhookhub.web.admin.fields import JSONTextField
from webhookhub.web.payload_pages import MONOSPACE
from webhookhub.web.request_access import is_tenant_admin

EDITED = ["name", "description", "schema", "schema_mode", "mode_in_force", "example", "archived"]
READ = ["name", "description", "schema_shown", "mode_in_force", "example_shown", "archived"]


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


class PrettyJSONField(JSONTextField):
    """JSON in a text area, indented so a schema can be read and edited."""

    def prepare_value(self, value: Any) -> Any:
        if value is None or isinstance(value, forms.fields.InvalidJSONInput):
            return super().prepare_value(value)
        return pretty(value)


class EventTypeForm(forms.ModelForm):
    class Meta:
        model = EventType
        fields = ["name", "description", "schema", "schema_mode", "example", "archived"]
        field_classes = {"schema": PrettyJSONField, "example": PrettyJSONField}
        widgets = {
            "schema": forms.Textarea(attrs={"rows": 16, **MONOSPACE}),
            "example": forms.Textarea(attrs={"rows": 8, **MONOSPACE}),
        }

    def clean_schema(self) -> Any:
        schema = self.cleaned_data.get("schema")
        if problem := schema_problem(schema):
            raise forms.ValidationError(problem)
        return schema


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    """The catalog: tenant admins read it, platform superusers edit it."""

    form = EventTypeForm
    list_display = ["name", "description", "schema_mode", "archived"]
    list_filter = ["archived", "schema_mode"]
    search_fields = ["name", "description"]
    readonly_fields = ["schema_shown", "mode_in_force", "example_shown"]

    def get_fields(self, request, obj=None):
        return EDITED if self.has_change_permission(request, obj) else READ

    @admin.display(description="schema")
    def schema_shown(self, event_type: EventType) -> str:
        if event_type.schema is None:
            return "none: the data is not checked"
        return format_html('<pre class="wrapped" id="schema">{}</pre>', pretty(event_type.schema))

    @admin.display(description="example")
    def example_shown(self, event_type: EventType) -> str:
        return format_html('<pre class="wrapped" id="example">{}</pre>', pretty(event_type.example))

    @admin.display(description="schema mode in force")
    def mode_in_force(self, event_type: EventType) -> str:
        """What publishing does now: the type's own mode, or the deployment's."""
        if event_type._state.adding:
            return f"{setting('SCHEMA_MODE')} (the deployment's WEBHOOKHUB_SCHEMA_MODE) unless a mode is chosen"
        whose = "its own" if event_type.schema_mode else "the deployment's WEBHOOKHUB_SCHEMA_MODE"
        return f"{mode_of(event_type.name)} ({whose})"

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
