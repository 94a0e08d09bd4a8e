"""Helpers for the dashboard tests: callers, deliveries in a given state, attempts recorded the way a
worker records them, and what a dashboard page shows."""

import html
import re
from datetime import timedelta
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from deliveries.models import Delivery
from tests.factories import delivery_to
from webhookhub import publish

FORM_TIME = "%Y-%m-%dT%H:%M"  # what a datetime-local input posts


def deliveries_to(endpoint, count: int, **kwargs) -> list[Delivery]:
    return [delivery_to(endpoint, **kwargs) for _ in range(count)]


def keyed_deliveries(endpoint, key: str, count: int) -> list[Delivery]:
    """``count`` events with ordering key ``key`` published in turn to ``endpoint`` (made ordered) only, and their
    deliveries: each after the first is pending behind the one before it."""
    if not endpoint.ordered:
        endpoint.ordered = True
        endpoint.save()
    events = [
        publish(
            tenant=endpoint.tenant, type="message.received", data={"n": n}, ordering_key=key, endpoint_ids=[endpoint.pk]
        )
        for n in range(count)
    ]
    return [Delivery.objects.get(event=event) for event in events]


def published_ago(deliveries: list[Delivery], age: timedelta) -> None:
    """Move the deliveries' creation ``age`` into the past (a key waiting that long is blocked past the setting)."""
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(created_at=timezone.now() - age)


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
