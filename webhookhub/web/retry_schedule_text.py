"""A retry schedule as people type it (the admin's text input, ``add_endpoint --retry-schedule``) and as it is
shown back: delays separated by commas, with optional units, a schedule's name, or "none"."""

import re

from django.core.exceptions import ValidationError

_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_DELAY = re.compile(r"(\d+(?:\.\d+)?)\s*(s|min|m|h|d)?", re.IGNORECASE)
NO_RETRIES = "none"


def parse_retry_schedule(text: str, names: list[str]) -> list[float] | str | None:
    """The admin's retry schedule text: blank, the deployment's (None); a schedule's name; "none", no retries
    ([]); else delays separated by commas, in seconds or with a unit (10, 5m, 2h, 1d)."""
    text = text.strip()
    if not text:
        return None
    if text in names:
        return text
    if text.lower() == NO_RETRIES:
        return []
    delays: list[float] = []
    for number, part in enumerate(text.split(","), start=1):
        match = _DELAY.fullmatch(part.strip())
        if not match:
            known = f"; or a schedule: {', '.join(names)}" if names else ""
            raise ValidationError(
                f"Retry {number}: {part.strip()!r} is not a delay. Write seconds separated by commas, e.g. "
                f"10, 60, 600 (or 10s, 5m, 2h, 1d){known}; or none for no retries."
            )
        seconds = float(match[1]) * _UNITS[(match[2] or "").lower()]
        delays.append(int(seconds) if seconds.is_integer() else seconds)
    return delays


def retry_schedule_text(value: list[float] | str | None) -> str:
    """A stored retry schedule as the admin's text input shows it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return ", ".join(seconds_text(delay) for delay in value) if value else NO_RETRIES


def seconds_text(seconds: float) -> str:
    """A number of seconds as typed: 600, 2.5 (never 6e+05)."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))
