"""Helpers for the dashboard tests: callers, deliveries in a given state, attempts recorded the way a
worker records them, and what a dashboard page shows."""

import html
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from deliveries.http import HttpResult
from deliveries.models import Delivery, DeliveryStatus
from deliveries.outbound import build_request
from deliveries.services.recording import write_results
from deliveries.services.sending import SendResult
from ground.conf import webhookhub_settings
from subscriptions.selectors import signing_secrets
from tests.factories import delivery_to

FORM_TIME = "%Y-%m-%dT%H:%M"  # what a datetime-local input posts


def record(
    deliveries: Iterable[Delivery],
    *,
    status: int | None = 200,
    duration_ms: int = 20,
    at: datetime | None = None,
    error: str = "",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    request_made: bool = True,
    final: bool = False,
) -> None:
    """One attempt of each (pending) delivery, recorded as a worker records it: claimed, then ``write_results``.

    ``at`` is when the attempt started (its rollup bucket); ``final`` makes a failed answer the
    last try (failed for good) instead of a retry; ``request_made=False`` is an attempt that made no request.
    """
    now = timezone.now()
    ids = [delivery.pk for delivery in deliveries]
    lease = now + timedelta(seconds=60)
    leased = Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.PENDING).update(
        next_attempt_at=now, lease_until=lease
    )
    assert leased == len(ids), "only pending deliveries can be attempted"
    claimed = list(Delivery.objects.filter(pk__in=ids).select_related("event", "endpoint"))
    for delivery in claimed:
        delivery.claimed_lease = lease  # as a worker's claim leaves it
    config = webhookhub_settings()
    if final:
        config = {**config, "RETRY_SCHEDULE": []}
    secrets = signing_secrets([delivery.endpoint for delivery in claimed], now=now)
    sent = []
    for delivery in claimed:
        request = build_request(
            endpoint=delivery.endpoint,
            event_id=delivery.event_id,
            body=delivery.event.body,
            secrets=secrets[delivery.endpoint_id],
            timestamp=int(now.timestamp()),
            user_agent=config["USER_AGENT"],
        )
        result = HttpResult(status, headers=headers or {}, body=body, error=error, duration_ms=duration_ms)
        masked = request.masked_headers if request_made else {}
        sent.append(SendResult(delivery, at or now, masked, result, request_made=request_made))
    write_results(sent, [], config)


def deliveries_to(endpoint, count: int, **kwargs) -> list[Delivery]:
    return [delivery_to(endpoint, **kwargs) for _ in range(count)]


def url(name: str, *args, **query) -> str:
    path = reverse(f"dashboard:{name}", args=args)
    return f"{path}?{urlencode(query)}" if query else path


def page(response) -> str:
    """The page's HTML with entities decoded, so texts compare as a user reads them."""
    return html.unescape(response.content.decode())


def messages_shown(response) -> list[str]:
    found = re.search(r'<ul class="messages">(.*?)</ul>', response.content.decode(), re.S)
    return [html.unescape(text) for text in re.findall(r"<li[^>]*>(.*?)</li>", found.group(1))] if found else []


def listed(response) -> list[int]:
    """The delivery ids in the log's table, top to bottom."""
    return [int(pk) for pk in re.findall(r'class="delivery-link">#(\d+)</a>', response.content.decode())]


def kpi(response, element_id: str) -> str:
    """The value of an overview figure, by its element id (``kpi-attempts``, ...)."""
    found = re.search(rf'id="{element_id}">(?:<a [^>]*>)?([^<]*)<', response.content.decode())
    assert found, f"no {element_id} on the page"
    return html.unescape(found.group(1)).strip()


def labelled_kpi(response, label: str) -> str:
    """The value of a figure by its label (``p95 latency (ms)``, ...)."""
    pattern = rf'<div class="value">([^<]*)</div><div class="label">{re.escape(label)}'
    found = re.search(pattern, response.content.decode())
    assert found, f"no figure labelled {label!r} on the page"
    return html.unescape(found.group(1)).strip()


def section(response, element_id: str) -> str:
    """The HTML from the element with this id to the end of its table or form."""
    content = response.content.decode()
    start = content.index(f'id="{element_id}"')
    end = min(i for i in (content.find("</table>", start), content.find("</form>", start)) if i != -1)
    return content[start:end]


def link(response, element_id: str) -> str | None:
    """The href of the link with this id (``older``, ``newer``), or None."""
    found = re.search(rf'<a href="([^"]*)" id="{element_id}"', response.content.decode())
    return html.unescape(found.group(1)) if found else None


def hidden_fields(form_html: str) -> dict[str, str]:
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form_html)
    }
