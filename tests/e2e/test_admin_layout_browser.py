"""The admin at 1366x900 and 1920x1080 in Chromium: the endpoint list shows its health columns without a
sideways scroll, the endpoint form shows no ``null``, and the delivery page's attempts fit the page.
Screenshots go to test-artifacts/."""

import pytest

from deliveries.models import Delivery
from subscriptions.services import disable_endpoint
from tests.e2e.conftest import ARTIFACTS
from tests.factories import MembershipFactory, UserFactory, make_endpoint
from tests.support.browser import chromium_page, log_in
from tests.support.recording import record
from tests.web.dashboard.support import deliveries_to

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

VIEWPORTS = [(1366, 900), (1920, 1080)]
HEALTH_COLUMNS = [
    "enabled",
    "last_status",
    "success_rate_24h",
    "failed_in_a_row",
    "scheduling_now",
    "why_disabled",
]
LONG_URL = "https://93.184.216.34/webhooks/incoming/customer-with-a-rather-long-name/messages/v2/?source=webhookhub"


@pytest.fixture
def sync_orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop in this thread


@pytest.fixture
def admin_user(tenant):
    user = UserFactory(is_staff=True)
    MembershipFactory(user=user, tenant=tenant, role="admin")
    return user


@pytest.fixture
def endpoints(tenant):
    """Four endpoints with long URLs and several event types, with health: one failing, one disabled."""
    types = ["message.received", "message.sent", "message.updated", "chat.opened"]
    made = [
        make_endpoint(tenant, f"{LONG_URL}&n={n}", name=name, event_types=types).endpoint
        for n, name in enumerate(["CRM production (EU)", "", "Billing", "Analytics warehouse"])
    ]
    record(deliveries_to(made[0], 3), headers={"Content-Type": "application/json", "X-Request-Id": "r" * 60})
    record(deliveries_to(made[1], 2), status=500, error="", body=b'{"error": "upstream down"}')
    record(
        deliveries_to(made[2], 2),
        status=None,
        error="Connection refused by 203.0.113.9 port 443: nothing is listening there (is the receiver running?).",
    )
    disable_endpoint(endpoint=made[3], reason="No successful delivery since 2026-11-25 08:00 UTC (5 days of failures).")
    return made


def _overflow(page, selector: str) -> int:
    """How many pixels ``selector``'s content is wider than its box (0: it fits)."""
    return page.evaluate(
        "s => { const e = document.querySelector(s); return e.scrollWidth - e.clientWidth; }", selector
    )


def _page_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def _shot(page, name: str, width: int, height: int) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}-{width}x{height}.png"), full_page=True)


@pytest.mark.usefixtures("sync_orm_beside_playwright")
@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_the_endpoint_list_shows_every_health_column_without_scrolling_sideways(
    live_server, admin_user, endpoints, width, height
):
    with chromium_page(width, height) as page:
        log_in(page, live_server.url, admin_user)
        page.goto(f"{live_server.url}/admin/subscriptions/endpoint/")
        _shot(page, "endpoint-list", width, height)

        assert page.title() == "Select endpoint to change | webhookhub admin"
        assert page.inner_text("#site-name") == "webhookhub"
        assert _overflow(page, "#changelist .results") <= 0
        assert _page_overflow(page) <= 0
        for column in HEALTH_COLUMNS:
            header = page.locator(f"th.column-{column}")
            box = header.bounding_box()
            assert header.is_visible() and box["x"] + box["width"] <= width, column
        text = page.inner_text("#result_list")
        assert "message.received, message.sent +2 more" in text  # not ["message.received", ...]
        assert '["' not in text
        assert "No successful delivery since" in text and "Connection refused by 203.0.113.9" in text  # cut short
        assert "CRM production (EU)" in text


@pytest.mark.usefixtures("sync_orm_beside_playwright")
@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_the_endpoint_form_fits_and_shows_no_null(live_server, admin_user, endpoints, width, height):
    with chromium_page(width, height) as page:
        log_in(page, live_server.url, admin_user)
        page.goto(f"{live_server.url}/admin/subscriptions/endpoint/{endpoints[0].pk}/change/")
        _shot(page, "endpoint-form", width, height)

        assert page.input_value("#id_filter") == ""
        assert page.inner_text("label[for=id_url]").startswith("URL")
        assert page.inner_text("label[for=id_timeout_s]").startswith("Timeout (seconds)")
        assert page.inner_text("label[for=id_rate_limit_per_s]").startswith("Rate limit (requests/s)")
        assert _overflow(page, "#content-main") <= 0
        assert _page_overflow(page) <= 0

        page.goto(f"{live_server.url}/admin/subscriptions/endpoint/add/")
        assert page.input_value("#id_filter") == ""


@pytest.mark.usefixtures("sync_orm_beside_playwright")
@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_the_delivery_page_fits_its_attempts_and_leads_to_the_dashboard(
    live_server, admin_user, endpoints, width, height
):
    delivery = Delivery.objects.filter(endpoint=endpoints[0]).order_by("pk").first()
    with chromium_page(width, height) as page:
        log_in(page, live_server.url, admin_user)
        page.goto(f"{live_server.url}/admin/deliveries/delivery/{delivery.pk}/change/")
        _shot(page, "delivery", width, height)

        assert page.locator("a.open-in-dashboard").is_visible()
        assert _overflow(page, "#content-main") <= 0
        assert _page_overflow(page) <= 0
        table = page.locator(".attempt-table").bounding_box()
        content = page.locator("#content-main").bounding_box()
        assert table["x"] + table["width"] <= content["x"] + content["width"] + 1
        title, tools = page.locator("#content > h1").bounding_box(), page.locator(".object-tools").bounding_box()
        assert title["x"] + title["width"] <= tools["x"] or title["y"] >= tools["y"] + tools["height"]
        page.click(".attempt-table details:nth-of-type(1) summary")  # request headers fold out, wrapped
        assert _overflow(page, "#content-main") <= 0
