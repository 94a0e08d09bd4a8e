"""A dry run of an endpoint on the tenant's latest real events: which its filter would let through, and the
exact body and headers each would go with, under its saved settings or proposed ones (so an admin can try a
shape or a filter before saving it). Nothing is written or sent.

A body is the text that would be sent, byte for byte, except that a Heymarket verification token is masked;
headers are those of a request made now, with auth and custom header values masked as in the attempt log and
the signature left out (``v1,****``): a preview signs nothing, so it never hands out a request to replay.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError

from deliveries.outbound import build_request
from deliveries.services.shaping import envelope_of
from events.models import Event, EventSource
from ground.conf import setting
from subscriptions import validation
from subscriptions.keys import schemes_signing
from subscriptions.models import ALL_EVENT_TYPES, AuthType, Endpoint
from subscriptions.payloads import ShapeError, fill_token, masked_token, receivable_types, shape_of, signs
from subscriptions.selectors import filter_mismatch

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class Trial:
    """The settings a preview applies: the endpoint's saved ones, or proposed ones (``checked_proposal``)."""

    payload_format: str
    payload_shape: str
    verification: str
    filter: dict[str, Any] | None


def saved(endpoint: Endpoint) -> Trial:
    return Trial(endpoint.payload_format, endpoint.payload_shape, endpoint.verification, endpoint.filter)


def checked_proposal(endpoint: Endpoint, given: Mapping[str, Any]) -> Trial:
    """The saved settings with those in ``given`` (``payload_format``, ``payload_shape``, ``filter``) instead,
    validated as saving them would be (ValidationError naming the field)."""
    try:
        payload_format, payload_shape, verification = validation.resolved_payload(
            endpoint, payload_format=given.get("payload_format"), payload_shape=given.get("payload_shape")
        )
    except ValidationError as error:  # the endpoint's types do not suit the format tried: the format's fault here
        errors = error.message_dict
        raise ValidationError(
            {"payload_format" if key == "event_types" else key: errors[key] for key in errors}
        ) from error
    endpoint_filter = validation.clean_filter(given["filter"]) if "filter" in given else endpoint.filter
    return Trial(payload_format, payload_shape, verification, endpoint_filter)


@dataclass(frozen=True)
class PreviewItem:
    event_id: str
    event_type: str
    created_at: datetime
    would_send: bool
    reason: str  # why not, or ""
    body: str | None  # None when the shape gives no body for this event
    headers: dict[str, str]


def latest_events(endpoint: Endpoint, payload_format: str, limit: int) -> list[Event]:
    """The tenant's latest real events (test events left out) of the types the endpoint would receive in this
    format, newest first."""
    events = Event.objects.filter(tenant_id=endpoint.tenant_id).exclude(source=EventSource.TEST)
    types = receivable_types(payload_format, endpoint.event_types)
    if ALL_EVENT_TYPES not in types:
        events = events.filter(event_type_id__in=types)
    return list(events.order_by("-created_at", "-id")[:limit])


def preview(
    endpoint: Endpoint, *, now: datetime, limit: int = DEFAULT_LIMIT, trial: Trial | None = None
) -> list[PreviewItem]:
    """What the endpoint (with ``trial``'s settings, else its saved ones) would do with its tenant's latest
    ``limit`` events of its types."""
    trial = trial or saved(endpoint)
    shape = shape_of(endpoint.pk, trial.payload_format, trial.payload_shape, trial.verification)
    token = masked_token(endpoint)
    items = []
    for event in latest_events(endpoint, trial.payload_format, limit):
        reason = filter_mismatch(trial.filter, event.data) or ""
        body: str | None
        try:
            body = shape.render(envelope_of(event)) if shape is not None else event.body
        except ShapeError as error:
            body, reason = None, reason or str(error)
        headers: dict[str, str] = {}
        if body is not None:
            body = fill_token(body, token)
            request = build_request(
                endpoint=endpoint,
                event_id=event.id,
                body=body,
                secrets=[],
                timestamp=int(now.timestamp()),
                user_agent=setting("USER_AGENT"),
            )
            headers = request.masked_headers
            if signs(trial.verification):  # not signed: a preview must not hand out a request anyone could replay
                headers["webhook-signature"] = " ".join(
                    f"{scheme},****" for scheme in schemes_signing(endpoint.signature_scheme)
                )
            if endpoint.auth_type == AuthType.OAUTH2:  # the token is fetched when sending
                headers["Authorization"] = "Bearer **** (an OAuth2 token from the token URL)"
        if not endpoint.enabled and not reason:
            reason = "The endpoint is disabled: nothing is sent until it is enabled."
        items.append(
            PreviewItem(
                event_id=event.id,
                event_type=event.event_type_id,
                created_at=event.created_at,
                would_send=not reason,
                reason=reason,
                body=body,
                headers=headers,
            )
        )
    return items
