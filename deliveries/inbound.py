"""``POST /triggers/{id}``: an external system's JSON, mapped by the trigger, published as an event.

Answers 200 ``{"message": "Request captured successfully"}``, or an error with a JSON body
(``{"detail": ..., "errors": {...}}`` as in the REST API); nothing is published on an error.
Every request that reaches an enabled trigger is logged for its admins, except those refused
by the rate limit (a flood must not turn into writes).
"""

import json

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from deliveries.services.publishing import publish
from events import field_mapping
from events.exceptions import PayloadTooLarge, PublishError
from events.models import EventSource, Trigger
from events.triggers import CAPTURED_MESSAGE, key_matches, log_request, take_rate_slot
from webhookhub.conf import setting


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
    trigger = Trigger.objects.select_related("tenant").filter(pk=trigger_id, enabled=True).first()
    if trigger is None:
        return _error(404, "No such trigger, or it is disabled.")
    source_ip = request.META.get("REMOTE_ADDR")

    def refuse(status: int, detail: str, errors: dict | None = None, body: bytes = b"", **headers) -> JsonResponse:
        log_request(trigger=trigger, status_code=status, detail=detail, source_ip=source_ip, body=body)
        return _error(status, detail, errors, **headers)

    if not key_matches(trigger, key):
        return refuse(401, "Wrong key for this trigger.", WWW_Authenticate='Bearer realm="triggers"')
    retry_after = take_rate_slot(trigger)
    if retry_after is not None:
        return _error(
            429, f"Too many requests for this trigger; retry in {retry_after} s.", Retry_After=str(retry_after)
        )
    if request.content_type != "application/json":
        return refuse(415, f"Send JSON with 'Content-Type: application/json', not {request.content_type!r}.")
    limit = setting("MAX_PAYLOAD_BYTES")
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > limit:
        return refuse(413, f"The body is larger than {limit} bytes.")
    try:
        body = request.body
    except RequestDataTooBig:
        return refuse(413, f"The body is larger than {limit} bytes.")
    if len(body) > limit:
        return refuse(413, f"The body is larger than {limit} bytes.", body=body)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return refuse(400, f"The body is not valid JSON: {exc}", {"body": [str(exc)]}, body=body)
    if not isinstance(payload, dict):
        return refuse(400, "The body must be a JSON object.", {"body": ["Expected a JSON object."]}, body=body)
    try:
        data = field_mapping.map_body(payload, mapping=trigger.mapping, identifier=trigger.identifier)
    except field_mapping.MissingIdentifier as exc:
        return refuse(400, str(exc), {trigger.identifier: ["This field is required."]}, body=body)
    try:
        event = publish(tenant=trigger.tenant, type=trigger.event_type_id, data=data, source=EventSource.TRIGGER)
    except PayloadTooLarge as exc:
        return refuse(413, f"Not published: {exc}", body=body)
    except PublishError as exc:
        return refuse(400, f"Not published: {exc}", body=body)
    log_request(trigger=trigger, status_code=200, source_ip=source_ip, body=body, event_id=event.id)
    return JsonResponse({"message": CAPTURED_MESSAGE}, status=200)
