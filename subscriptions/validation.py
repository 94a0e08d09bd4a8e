"""Validation of endpoint settings; every error names its field (Django ValidationError dict)."""

import re
from typing import Any

from django.core.exceptions import ValidationError

from events.envelope import unstorable_text
from events.models import EventType
from subscriptions.models import ALL_EVENT_TYPES, AuthType, Endpoint, PayloadFormat, Verification
from subscriptions.payloads import HEYMARKET_TYPES, shape_problem
from subscriptions.url_policy import UnsafeUrl, validate_endpoint_url

# RFC 9110 token characters.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Control characters a header value may not carry: C0 (except tab), DEL, and C1 (e.g. NEL).
HEADER_VALUE_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
MAX_HEADER_VALUE_BYTES = 4096  # one header value (custom header, auth token or password)
MAX_CUSTOM_HEADERS = 20
MAX_HEADERS_BYTES = 8192  # names and values of the custom headers and the auth header together
# Headers the platform sets; endpoint settings cannot replace them.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)


def clean_url(url: str) -> str:
    try:
        validate_endpoint_url(url)
    except UnsafeUrl as exc:
        raise ValidationError({"url": str(exc)}) from exc
    return url.strip()


def clean_event_types(event_types: Any) -> list[str]:
    if not isinstance(event_types, list | tuple) or not event_types:
        raise ValidationError({"event_types": 'Give a list of event type names, or ["*"] for every type.'})
    names = list(dict.fromkeys(event_types))
    if ALL_EVENT_TYPES in names:
        if len(names) > 1:
            raise ValidationError({"event_types": '"*" already means every type; list nothing else with it.'})
        return names
    if not all(isinstance(name, str) for name in names):
        raise ValidationError({"event_types": "Event type names must be strings."})
    known = set(EventType.objects.filter(name__in=names, archived=False).values_list("name", flat=True))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValidationError({"event_types": f"Unknown event type(s): {', '.join(sorted(unknown))}."})
    return names


def _check_value(field: str, what: str, value: str) -> None:
    """A header value (or an auth secret that becomes one): short, printable ISO-8859-1 text."""
    if HEADER_VALUE_CONTROLS.search(value):
        raise ValidationError({field: f"{what} must not contain control characters (CR, LF, NUL, DEL, ...)."})
    try:
        encoded = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValidationError({field: f"{what} must be ISO-8859-1 text."}) from exc
    if len(encoded) > MAX_HEADER_VALUE_BYTES:
        raise ValidationError({field: f"{what} is longer than {MAX_HEADER_VALUE_BYTES} bytes."})


def _check_header(field: str, name: Any, value: Any) -> None:
    if not isinstance(name, str) or not HEADER_NAME.fullmatch(name) or len(name) > 256:
        raise ValidationError({field: f"{name!r} is not a valid header name."})
    if not isinstance(value, str):
        raise ValidationError({field: f"The value of header {name!r} must be a string."})
    _check_value(field, f"The value of header {name!r}", value)
    if name.lower() in RESERVED_HEADERS:
        raise ValidationError({field: f"The header {name!r} is set by webhookhub and cannot be overridden."})


def clean_custom_headers(headers: Any) -> dict[str, str]:
    if headers in (None, {}):
        return {}
    if not isinstance(headers, dict):
        raise ValidationError({"custom_headers": "Custom headers must be an object of header name to value."})
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise ValidationError({"custom_headers": f"At most {MAX_CUSTOM_HEADERS} custom headers."})
    seen: dict[str, str] = {}
    for name, value in headers.items():
        _check_header("custom_headers", name, value)
        if name.lower() in seen:
            raise ValidationError(
                {"custom_headers": f"{seen[name.lower()]!r} and {name!r} are the same header (names ignore case)."}
            )
        seen[name.lower()] = name
    if sum(len(name) + len(value) for name, value in headers.items()) > MAX_HEADERS_BYTES:
        raise ValidationError({"custom_headers": f"The custom headers add up to more than {MAX_HEADERS_BYTES} bytes."})
    return dict(headers)


def check_headers_together(custom_headers: dict[str, str], auth_type: str, auth: dict[str, str] | None) -> None:
    """The auth header must not repeat a custom header, and together they stay under the size limit."""
    if auth_type == AuthType.API_KEY and auth:
        name = auth["header"]
        if name.lower() in {header.lower() for header in custom_headers}:
            raise ValidationError({"custom_headers": f"{name!r} is already the auth header."})
    size = sum(len(name) + len(value) for name, value in custom_headers.items())
    size += sum(len(value) for value in (auth or {}).values())
    if size > MAX_HEADERS_BYTES:
        raise ValidationError({"custom_headers": f"Headers and auth add up to more than {MAX_HEADERS_BYTES} bytes."})


def clean_auth(auth_type: str, auth: dict[str, Any] | None) -> dict[str, str] | None:
    auth = auth or {}

    def required(key: str) -> str:
        value = auth.get(key)
        if not isinstance(value, str) or not value:
            raise ValidationError({"auth": f"{auth_type} auth needs a non-empty {key!r}."})
        _check_value("auth", f"The auth {key!r}", value)
        return value

    if auth_type == AuthType.NONE:
        return None
    if auth_type == AuthType.BEARER:
        return {"token": required("token")}
    if auth_type == AuthType.API_KEY:
        header, value = required("header"), required("value")
        _check_header("auth", header, value)
        return {"header": header, "value": value}
    if auth_type == AuthType.BASIC:
        username = required("username")
        if ":" in username:
            raise ValidationError({"auth": "A basic auth username cannot contain ':'."})
        return {"username": username, "password": required("password")}
    raise ValidationError({"auth": f"Unknown auth type {auth_type!r}; choose one of {', '.join(AuthType.values)}."})


def clean_filter(value: Any) -> dict[str, Any] | None:
    if value in (None, {}):
        return None
    if not isinstance(value, dict) or not all(isinstance(key, str) and key for key in value):
        raise ValidationError({"filter": 'A filter is an object such as {"direction": "inbound"}.'})
    if empty := [path for path, expected in value.items() if expected == []]:
        raise ValidationError({"filter": f"{empty[0]!r} allows no value ([]): the endpoint would receive nothing."})
    try:
        problem = unstorable_text(value)
    except RecursionError as exc:
        raise ValidationError({"filter": "The filter is nested too deeply."}) from exc
    if problem:
        raise ValidationError({"filter": f"The filter {problem}."})
    return value


MAX_RATE_LIMIT_PER_S = 100_000


def clean_rate_limit(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATE_LIMIT_PER_S:
        raise ValidationError({"rate_limit_per_s": f"Give a whole number from 1 to {MAX_RATE_LIMIT_PER_S}, or null."})
    return value


MAX_IN_FLIGHT = 64


def clean_max_in_flight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IN_FLIGHT:
        raise ValidationError({"max_in_flight": f"Give a whole number from 1 to {MAX_IN_FLIGHT}."})
    return value


def clean_ordered(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError({"ordered": "Give true or false."})
    return value


def clean_timeout(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or not 0 < value <= 60:
        raise ValidationError({"timeout_s": "The timeout must be a number of seconds between 0 and 60."})
    return float(value)


def clean_payload(payload_format: Any, payload_shape: Any, verification: Any, event_types: list[str]) -> None:
    """The body settings together: a known format; a custom format's shape compiles and gives a JSON object
    for the example of every subscribed type; the token in the body only for Heymarket."""
    if payload_format not in PayloadFormat.values:
        raise ValidationError({"payload_format": f"Choose one of {', '.join(PayloadFormat.values)}."})
    if not isinstance(payload_shape, str):
        raise ValidationError({"payload_shape": "Give a JMESPath expression as a string."})
    if problem := shape_problem(payload_format, payload_shape, event_types):
        raise ValidationError({"payload_shape": problem})
    if payload_format == PayloadFormat.HEYMARKET:
        _check_heymarket_types(event_types)
    if verification not in Verification.values:
        raise ValidationError({"verification": f"Choose one of {', '.join(Verification.values)}."})
    if verification != Verification.SIGNATURE and payload_format != PayloadFormat.HEYMARKET:
        raise ValidationError(
            {"verification": "Only the Heymarket format carries a verification token; use signature."}
        )


def resolved_payload(
    endpoint: Endpoint,
    *,
    payload_format: Any = None,
    payload_shape: Any = None,
    verification: Any = None,
    event_types: list[str] | None = None,
) -> tuple[str, str, str]:
    """The (format, shape, verification) the endpoint would have with these changes (None: unchanged), checked
    (ValidationError naming the field): a new format drops a shape it does not use, and takes its own
    verification unless one is given. ``event_types``: already cleaned, when they change too."""
    new_format = endpoint.payload_format if payload_format is None else payload_format
    if payload_shape is None:
        payload_shape = endpoint.payload_shape if new_format == PayloadFormat.CUSTOM else ""
    if verification is None:
        switched = new_format != endpoint.payload_format
        verification = default_verification(new_format) if switched else endpoint.verification
    clean_payload(new_format, payload_shape, verification, endpoint.event_types if event_types is None else event_types)
    return new_format, payload_shape, verification


def default_verification(payload_format: str) -> str:
    """Heymarket receivers check the token in the body; the signature headers go too, for the move."""
    return Verification.BOTH if payload_format == PayloadFormat.HEYMARKET else Verification.SIGNATURE


def _check_heymarket_types(event_types: list[str]) -> None:
    """A Heymarket endpoint takes only the types Heymarket has (``*``: those): its receivers know no others."""
    foreign = sorted(name for name in event_types if name != ALL_EVENT_TYPES and name not in HEYMARKET_TYPES)
    if foreign:
        raise ValidationError(
            {
                "event_types": f"Heymarket has no event type for {', '.join(foreign)}; a Heymarket endpoint takes "
                f'{", ".join(HEYMARKET_TYPES)} ("*" means those).'
            }
        )
