"""What the admin and the dashboard show of endpoint payloads: the preview's form (settings to try instead of
the saved ones; ``deliveries.preview``), and the body a delivery sends with its verification token masked."""

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import timezone

from deliveries.models import Delivery
from deliveries.preview import DEFAULT_LIMIT, MAX_LIMIT, PreviewItem, checked_proposal, preview
from subscriptions.models import Endpoint, PayloadFormat
from subscriptions.payloads import MAX_SHAPE_CHARS, fill_token, masked_token
from webhookhub.web.admin.fields import JSONTextField

MONOSPACE = {"style": "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; width: 100%"}


def shown_body(delivery: Delivery) -> str:
    """The body the delivery sends, as pages show it: a Heymarket token slot holds the token's mask."""
    return fill_token(delivery.sent_body(), masked_token(delivery.endpoint))


class PreviewForm(forms.Form):
    """How many of the latest events, and optionally settings to try instead of the saved ones; nothing is saved."""

    limit = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        initial=DEFAULT_LIMIT,
        label="Events",
        help_text=f"The tenant's latest real events of the endpoint's types, 1 to {MAX_LIMIT} "
        f"({DEFAULT_LIMIT} when empty).",
    )
    payload_format = forms.ChoiceField(
        required=False,
        choices=[("", "the saved one"), *PayloadFormat.choices],
        label="Try payload format",
    )
    payload_shape = forms.CharField(
        required=False,
        strip=False,
        max_length=MAX_SHAPE_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, **MONOSPACE}),
        label="Try payload shape",
        help_text="Custom format only: a JMESPath expression over {id, type, timestamp, tenant_id, data} giving a "
        "JSON object, e.g. {event: type, payload: data}. Empty: the saved shape.",
    )
    filter = JSONTextField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, **MONOSPACE}),
        label="Try filter",
        help_text='e.g. {"direction": "inbound"}; {} for no filter. Empty: the saved filter.',
    )

    def proposal(self) -> dict[str, Any]:
        """The settings given to try (``deliveries.preview.checked_proposal``): empty ones keep the saved ones."""
        data = self.cleaned_data
        given: dict[str, Any] = {}
        for name in ("payload_format", "payload_shape"):
            if data.get(name):
                given[name] = data[name]
        if data.get("filter") is not None:
            given["filter"] = data["filter"]
        return given

    def items(self, endpoint: Endpoint) -> list[PreviewItem] | None:
        """The preview under the settings tried (the saved ones when the form is unbound); None, with form
        errors, when they are invalid."""
        if not self.is_bound:
            return preview(endpoint, now=timezone.now(), limit=DEFAULT_LIMIT)
        if not self.is_valid():
            return None
        try:
            trial = checked_proposal(endpoint, self.proposal())
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                # The verification follows the format tried: a problem with it is the format's.
                self.add_error(field if field in self.fields else "payload_format", messages)
            return None
        limit = self.cleaned_data.get("limit") or DEFAULT_LIMIT
        return preview(endpoint, now=timezone.now(), limit=limit, trial=trial)


def preview_context(endpoint: Endpoint, query: QueryDict) -> dict[str, Any]:
    """What a preview page shows (``_preview_items.html``): the form bound to the query, if any, its items,
    and the saved filter as JSON."""
    form = PreviewForm(query or None)
    saved_filter = json.dumps(endpoint.filter, ensure_ascii=False) if endpoint.filter else ""
    return {"form": form, "items": form.items(endpoint), "saved_filter": saved_filter}
