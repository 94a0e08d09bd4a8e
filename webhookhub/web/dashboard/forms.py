"""The dashboard's forms: the log's filters and a replay's choices. Bad values become form errors."""

from datetime import datetime
from typing import cast

from django import forms

from deliveries.models import DeliveryStatus
from deliveries.services.actions import REPLAYABLE_STATUSES
from events.models import EventType
from subscriptions.models import Endpoint
from webhookhub.web.dashboard.queries import RETRYING

_DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


class LogFilterForm(forms.Form):
    endpoint = forms.ChoiceField(required=False)
    event_type = forms.ChoiceField(required=False, label="Event type")
    status = forms.ChoiceField(
        required=False, choices=[("", "any status"), *DeliveryStatus.choices, (RETRYING, "Pending, retrying")]
    )
    since = forms.DateTimeField(
        required=False, input_formats=_DATETIME_FORMATS, widget=_DATETIME_INPUT, label="From (UTC)"
    )
    until = forms.DateTimeField(
        required=False, input_formats=_DATETIME_FORMATS, widget=_DATETIME_INPUT, label="To (UTC)"
    )
    event = forms.CharField(required=False, max_length=40, label="Event id")
    ordering_key = forms.CharField(required=False, max_length=200, strip=False, label="Ordering key")  # exact
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        help_text="An event or delivery id finds that one; other text is looked for in payloads and last errors.",
    )

    def __init__(self, *args, endpoints: list[Endpoint], **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["endpoint"]).choices = [("", "all endpoints")] + [
            (e.pk, str(e)) for e in endpoints
        ]
        names = EventType.objects.values_list("name", flat=True)
        cast(forms.ChoiceField, self.fields["event_type"]).choices = [("", "all event types")] + [
            (name, name) for name in names
        ]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be after the start of the range.")
        return cleaned


class ReplayForm(forms.Form):
    which = forms.ChoiceField(
        choices=[("failed", "failed deliveries"), ("all", "all deliveries")], initial="failed", label="Replay"
    )
    since = forms.DateTimeField(input_formats=_DATETIME_FORMATS, widget=_DATETIME_INPUT, label="From (UTC)")
    until = forms.DateTimeField(input_formats=_DATETIME_FORMATS, widget=_DATETIME_INPUT, label="To (UTC)")
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be after the start of the range.")
        return cleaned

    @property
    def statuses(self) -> list[str]:
        """Failed ones, or all: every status a replay may send again (``actions.REPLAYABLE_STATUSES``)."""
        if self.cleaned_data["which"] == "failed":
            return [DeliveryStatus.FAILED]
        return list(REPLAYABLE_STATUSES)

    @staticmethod
    def initial_for(since: datetime, until: datetime) -> dict:
        return {"which": "failed", "since": since, "until": until}
