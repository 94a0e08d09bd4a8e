"""Validation of endpoint settings; every error names its field (Django ValidationError dict)."""

import math
import re
from typing import Any

from django.core.exceptions import ValidationError

from events.envelope import unstorable_text
from events.models import EventType
from ground.conf import setting
from subscriptions.models import (
    ALL_EVENT_TYPES,
    AuthType,
    Endpoint,
    OAuth2ClientAuth,
    PayloadFormat,
    SignatureScheme,
    Verification,
)
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
    if auth_type != AuthType.OAUTH2:  # its header is the token, fetched when sending
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
    if auth_type == AuthType.OAUTH2:
        return _clean_oauth2(auth, required)
    raise ValidationError({"auth": f"Unknown auth type {auth_type!r}; choose one of {', '.join(AuthType.values)}."})


OAUTH2_KEYS = ("token_url", "client_id", "client_secret", "scope", "audience", "client_auth")
MAX_OAUTH2_TEXT = 1000  # scope, audience


def _clean_oauth2(auth: dict[str, Any], required: Any) -> dict[str, str]:
    """Client credentials: a token URL under the address policy, the client's id and secret, an optional scope
    and audience, and how the client authenticates (basic or post)."""
    if unknown := sorted(set(auth) - set(OAUTH2_KEYS)):
        named = ", ".join(map(repr, unknown))
        raise ValidationError({"auth": f"oauth2 auth has no {named}; it takes {', '.join(OAUTH2_KEYS)}."})
    token_url = required("token_url")
    try:
        validate_endpoint_url(token_url)
    except UnsafeUrl as exc:
        raise ValidationError({"auth": f"The token_url is refused: {exc}"}) from exc
    client_auth = auth.get("client_auth") or OAuth2ClientAuth.BASIC
    if client_auth not in OAuth2ClientAuth.values:
        raise ValidationError({"auth": f"client_auth is {', '.join(map(repr, OAuth2ClientAuth.values))}."})
    client_id, client_secret = required("client_id"), required("client_secret")
    clean = {"token_url": token_url.strip(), "client_id": client_id, "client_secret": client_secret}
    for key in ("scope", "audience"):
        value = auth.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > MAX_OAUTH2_TEXT or not value.isprintable():
            raise ValidationError({"auth": f"{key} must be text of at most {MAX_OAUTH2_TEXT} printable characters."})
        clean[key] = value
    clean["client_auth"] = client_auth
    return clean


def clean_signature_scheme(value: Any) -> str:
    if value not in SignatureScheme.values:
        raise ValidationError({"signature_scheme": f"Choose one of {', '.join(SignatureScheme.values)}."})
    return value


def check_signing(verification: str, signature_scheme: str) -> None:
    """Token verification sends no signature headers, so a scheme chosen for it would be ignored: refused."""
    if verification == Verification.TOKEN and signature_scheme != SignatureScheme.V1:
        raise ValidationError(
            {
                "signature_scheme": f"{signature_scheme} is not sent: verification 'token' sends no signature. "
                "Choose verification 'signature' or 'both' to sign with it, or keep v1."
            }
        )


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


MAX_TIMEOUT_S = 60


def clean_timeout(value: Any) -> float | None:
    """The endpoint's total timeout per request (connect, send, wait for the answer); None: the deployment's."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT_S:
        raise ValidationError({"timeout_s": f"The timeout must be a number of seconds between 0 and {MAX_TIMEOUT_S}."})
    return float(value)


def clean_adaptive_concurrency(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError({"adaptive_concurrency": "Give true or false."})
    return value


def retry_schedule_names() -> list[str]:
    """The schedules the operator defines (``WEBHOOKHUB["RETRY_SCHEDULES"]``), by name."""
    return sorted(setting("RETRY_SCHEDULES"))


def retry_delays_problem(delays: Any, config: dict[str, Any]) -> str | None:
    """Why a list of retry delays is outside the operator's bounds (None: it is within them). Shared by the
    endpoint's own schedule and the system check of the operator's schedules."""
    most, low, high = (
        config["RETRY_SCHEDULE_MAX_RETRIES"],
        config["RETRY_DELAY_MIN_SECONDS"],
        config["RETRY_DELAY_MAX_SECONDS"],
    )
    if not isinstance(delays, list | tuple):
        return "must be a list of seconds"
    if len(delays) > most:
        return f"has {len(delays)} retries; at most {most} are allowed"
    for number, delay in enumerate(delays, start=1):
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not math.isfinite(delay):
            return f"retry {number}: {delay!r} is not a number of seconds"
        if not low <= delay <= high:
            return f"retry {number}: {_number(delay)} s is outside {_number(low)} to {_number(high)} seconds"
    return None


def clean_retry_schedule(value: Any) -> list[float] | str | None:
    """An endpoint's retry schedule: None (the deployment's, ``RETRY_SCHEDULE``), the name of a schedule the
    operator defines (``RETRY_SCHEDULES``), or its own list of seconds to wait after each failed attempt, within
    the operator's bounds. ``[]`` is a choice too: one attempt, no retries (for events that are worthless late)."""
    if value is None:
        return None
    names = retry_schedule_names()
    if isinstance(value, str):
        if value not in names:
            available = ", ".join(names) if names else "none are defined"
            raise ValidationError({"retry_schedule": f"Unknown schedule {value!r}; the schedules are: {available}."})
        return value
    if not isinstance(value, list | tuple):
        raise ValidationError(
            {
                "retry_schedule": "Give a list of seconds to wait after each failed attempt, e.g. [10, 60, 600], "
                f"the name of a schedule ({', '.join(names) or 'none are defined'}), or null for the deployment's."
            }
        )
    config = {name: setting(name) for name in _RETRY_BOUNDS}
    if problem := retry_delays_problem(value, config):
        raise ValidationError({"retry_schedule": f"The retry schedule {problem}."})
    return [int(delay) if float(delay).is_integer() else float(delay) for delay in value]


_RETRY_BOUNDS = ("RETRY_SCHEDULE_MAX_RETRIES", "RETRY_DELAY_MIN_SECONDS", "RETRY_DELAY_MAX_SECONDS")


def clean_auto_disable_after(value: Any) -> int | None:
    """How long the endpoint may fail without a success before it is disabled; None: the deployment's period."""
    if value is None:
        return None
    low, high = setting("AUTO_DISABLE_MIN_SECONDS"), setting("AUTO_DISABLE_MAX_SECONDS")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            {
                "auto_disable_after_seconds": f"Give a whole number of seconds from {low} ({_span(low)}) to {high} "
                f"({_span(high)}), or null for the deployment's period."
            }
        )
    return value


def _number(value: float) -> str:
    """600, 2.5 (never 6e+05)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _span(seconds: float) -> str:
    """A period as people say it: 1 h, 30 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{_number(seconds)} s"


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
