"""A tenant admin presses "Send test event" in a real browser and sees what a real worker delivered."""

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.factories import MembershipFactory, UserFactory, make_endpoint
from tests.support.browser import chromium_page, log_in
from tests.support.receiver import Reply

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@pytest.fixture
def sync_orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.mark.usefixtures("sync_orm_beside_playwright")
def test_send_test_event_button_shows_the_delivered_result(e2e, live_server, tenant, receiver):
    receiver.default = Reply(status=202, body=b'{"received": true}')
    user = UserFactory(is_staff=True)
    MembershipFactory(user=user, tenant=tenant, role="admin")
    endpoint = make_endpoint(tenant, receiver.url("/hooks/crm"), name="CRM").endpoint
    e2e.start_all()

    with chromium_page() as page:
        log_in(page, live_server.url, user)
        page.goto(f"{live_server.url}/admin/subscriptions/endpoint/{endpoint.pk}/change/")
        page.click("#send-test-event")
        page.click("#send-test-submit")
        page.wait_for_selector("#status-code", timeout=60_000)  # the page refreshes until the worker sent it

        assert page.inner_text("#status-code") == "202"
        assert page.inner_text("#outcome") == "Success"
        assert '"received": true' in page.inner_text("#response-body")
        assert "ms" in page.inner_text("#latency")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "admin-send-test-event.png"), full_page=True)

    [request] = receiver.requests
    assert request.path == "/hooks/crm"
    assert '"type":"webhook.test"' in request.body.decode()
