"""``POST /triggers/{id}``: an external system's JSON, mapped by the trigger, published as an event.

Answers 200 ``{"message": "Request captured successfully"}``, or an error with a JSON body
(``{"detail": ..., "errors": {...}}`` as in the REST API); nothing is published on an error.
Every request with the right key for an enabled trigger is logged for its admins, except those
refused by the rate limit: a flood, or anyone who merely knows the URL, must not turn into writes.
"""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from deliveries.services.publishing import publish
from events import field_mapping
from events.exceptions import PayloadTooLarge, PublishError
from events.models import EventSource, Trigger
from events.triggers import (
    CAPTURED_MESSAGE,
    UnusableOrderingKey,
    key_matches,
    log_request,
    ordering_key_in,
    take_rate_slot,
)
from ground.conf import setting

_MAX_ID_LENGTH = 40


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _error(status: int, detail: str, errors: dict | None = None, **headers: str) -> JsonResponse:
    response = JsonResponse({"detail": detail, "errors": errors or {}}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _bearer_key(request: HttpRequest) -> str | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def _unauthorized(detail: str) -> JsonResponse:
    return _error(401, detail, WWW_Authenticate='Bearer realm="triggers"')


@csrf_exempt
def capture(request: HttpRequest, trigger_id: str) -> JsonResponse:
    if request.method != "POST":
        return _error(405, "Send the JSON with POST.", Allow="POST")
    key = _bearer_key(request)
    if key is None:
        return _unauthorized("Send the trigger's key as 'Authorization: Bearer <key>'.")
    trigger = None
    if len(trigger_id) <= _MAX_ID_LENGTH and "\x00" not in trigger_id:
        trigger = Trigger.objects.select_related("tenant").filter(pk=trigger_id, enabled=True).first()
    if trigger is None:
        return _error(404, "No such trigger, or it is disabled.")
    source_ip = request.META.get("REMOTE_ADDR")

    def refuse(status: int, detail: str, errors: dict | None = None, body: bytes = b"", **headers) -> JsonResponse:
        log_request(trigger=trigger, status_code=status, detail=detail, source_ip=source_ip, body=body)
        return _error(status, detail, errors, **headers)

    if not key_matches(trigger, key):  # not logged: anyone who knows the URL could fill the log
        return _unauthorized("Wrong key for this trigger.")
    retry_after = take_rate_slot(trigger)
    if retry_after is not None:
        return _error(
            429, f"Too many requests for this trigger; retry in {retry_after} s.", Retry_After=str(retry_after)
        )
    if request.content_type != "application/json":
        return refuse(415, f"Send JSON with 'Content-Type: application/json', not {request.content_type!r}.")
    limit = min(setting("MAX_PAYLOAD_BYTES"), settings.DATA_UPLOAD_MAX_MEMORY_SIZE or setting("MAX_PAYLOAD_BYTES"))
    declared = request.META.get("CONTENT_LENGTH") or ""
    if not declared:
        return refuse(411, "Send a Content-Length header (chunked bodies are not accepted).")
    if not declared.isascii() or not declared.isdigit():
        return refuse(400, f"Content-Length {declared!r} is not a number of bytes.")
    if int(declared) > limit:
        return refuse(413, f"The body is larger than {limit} bytes.")
    try:
        body = request.body
    except RequestDataTooBig:
        return refuse(413, f"The body is larger than {limit} bytes.")
    try:
        payload = json.loads(body, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        return refuse(
            400, f"The body repeats the key {exc.key!r}.", {"body": [f"Duplicate key {exc.key!r}."]}, body=body
        )
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, an integer too long to convert
        return refuse(400, f"The body is not valid JSON: {exc}", {"body": [str(exc)]}, body=body)
    if not isinstance(payload, dict):
        return refuse(400, "The body must be a JSON object.", {"body": ["Expected a JSON object."]}, body=body)
    try:
        data = field_mapping.map_body(payload, mapping=trigger.mapping, identifier=trigger.identifier)
    except field_mapping.MissingIdentifier as exc:
        return refuse(400, str(exc), {trigger.identifier: ["This field is required."]}, body=body)
    except field_mapping.MappingError as exc:
        return refuse(400, f"The trigger's mapping cannot be applied: {exc}", body=body)
    try:
        ordering_key = ordering_key_in(payload, trigger.ordering_key_path)
    except UnusableOrderingKey as exc:
        return refuse(400, str(exc), {exc.path: [str(exc)]}, body=body)
    try:
        event = publish(
            tenant=trigger.tenant,
            type=trigger.event_type_id,
            data=data,
            source=EventSource.TRIGGER,
            ordering_key=ordering_key,
        )
    except PayloadTooLarge as exc:
        return refuse(413, f"Not published: the mapped event is too large ({exc})", body=body)
    except PublishError as exc:
        return refuse(400, f"Not published: {exc}", body=body)
    log_request(trigger=trigger, status_code=200, source_ip=source_ip, body=body, event_id=event.id)
    return JsonResponse({"message": CAPTURED_MESSAGE}, status=200)
