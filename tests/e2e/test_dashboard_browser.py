"""A tenant admin finds a failed delivery on the dashboard, resends it, and sees the new attempt a real worker made.

The failure is real too: a real worker sends the event to a real receiver answering 500, and with
an empty retry schedule the real retry policy makes that first 500 final (``decide``: attempt 1 is
past a schedule of length 0), so the delivery ends up ``failed`` without the receiver seeing more.
"""

import pytest

from deliveries.models import Attempt, DeliveryStatus
from tests.e2e.conftest import ARTIFACTS
from tests.factories import MembershipFactory, UserFactory, make_endpoint
from tests.support import processes
from tests.support.browser import chromium_page, log_in
from tests.support.receiver import Receiver, Reply
from tests.support.waiting import wait_for_status
from webhookhub import publish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NO_HORIZONTAL_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def sync_orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def other_receiver():
    server = Receiver().start()
    yield server
    server.stop()


def screenshot(page, name: str) -> None:
    """Save test-artifacts/dashboard-<name>.png and check the page does not scroll sideways at 1280 px."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert page.evaluate(NO_HORIZONTAL_SCROLL), f"{name}: horizontal scroll, scrollWidth/innerWidth = {widths}"


@pytest.mark.usefixtures("sync_orm_beside_playwright")
def test_resend_a_failed_delivery_from_the_dashboard(e2e, settings, live_server, tenant, receiver, other_receiver):
    # No retries: the first non-2xx answer is final, in the worker processes and in this one.
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "RETRY_SCHEDULE": []}
    e2e.env = processes.process_env(WEBHOOKHUB_RETRY_SCHEDULE="")
    receiver.default = Reply(status=500, body=b'{"error": "database down"}')
    other_receiver.default = Reply(status=200, body=b"ok")
    user = UserFactory(is_staff=True)
    MembershipFactory(user=user, tenant=tenant, role="admin")
    make_endpoint(tenant, receiver.url("/hooks/inbox"), name="Inbox", event_types=["message.received"])
    make_endpoint(tenant, other_receiver.url("/hooks/crm"), name="CRM", event_types=["contact.created"])
    e2e.start_all()

    failing = publish(tenant=tenant, type="message.received", data={"id": "msg_1001", "text": "Is my order ready?"})
    fine = publish(tenant=tenant, type="contact.created", data={"contact": "ct_7"})
    delivery = wait_for_status(failing.id, DeliveryStatus.FAILED, timeout=60)
    wait_for_status(fine.id, DeliveryStatus.SUCCEEDED, timeout=60)
    assert len(receiver.requests) == 1
    assert (delivery.attempt_count, delivery.last_status_code) == (1, 500)
    receiver.default = Reply(status=200, body=b'{"received": true}')

    with chromium_page() as page:
        log_in(page, live_server.url, user)

        page.goto(f"{live_server.url}/dashboard/")
        assert page.inner_text("#kpi-failed") == "1"
        assert page.inner_text("#kpi-succeeded") == "1"
        screenshot(page, "overview")

        # The log, filtered with the form: only the failed delivery of the two.
        page.click("#nav-deliveries")
        assert page.locator("#delivery-log a.delivery-link").count() == 2
        page.select_option("#log-filters select[name=status]", "failed")
        page.click("#apply-filters")
        page.wait_for_url("**/dashboard/deliveries/?*status=failed*")
        rows = page.locator("#delivery-log tbody tr")
        assert rows.count() == 1
        assert rows.first.locator("a.delivery-link").inner_text() == f"#{delivery.pk}"
        assert rows.first.locator(".badge.failed").inner_text() == "Failed"
        assert "500" in rows.first.inner_text()
        screenshot(page, "log-failed")

        # The overview's failed KPI links to the same filtered log.
        page.goto(f"{live_server.url}/dashboard/")
        page.click("#kpi-failed a")
        page.wait_for_url("**/dashboard/deliveries/?status=failed*")
        assert page.input_value("#log-filters select[name=status]") == "failed"
        assert page.locator("#delivery-log a.delivery-link").all_inner_texts() == [f"#{delivery.pk}"]

        page.click("#delivery-log a.delivery-link")
        page.wait_for_url(f"**/dashboard/deliveries/{delivery.pk}/")
        assert page.inner_text("#attempt-1 .attempt-status") == "500"
        assert page.locator("#attempts .attempt").count() == 1
        screenshot(page, "delivery-failed")

        page.click("#resend")
        # The page refreshes itself every 2 s while the send is due, until the worker's attempt is there.
        page.wait_for_selector("#attempt-2", timeout=60_000)
        page.wait_for_load_state()
        assert page.inner_text("#attempt-2 .attempt-status") == "200"
        assert page.inner_text("#attempt-2 .badge") == "Success"
        assert page.inner_text("#attempt-1 .attempt-status") == "500"
        assert page.inner_text("#attempt-1 .badge") == "Failed"
        assert page.inner_text("h1 .badge") == "Succeeded"
        assert page.inner_text("#attempt-count") == "2"
        assert '"received": true' in page.inner_text("#attempt-2 .response-body")
        screenshot(page, "delivery-resent")

    first, second = receiver.requests
    assert first.path == second.path == "/hooks/inbox"
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == failing.id
    assert first.body == second.body == failing.body.encode()
    assert len(other_receiver.requests) == 1
    attempts = Attempt.objects.filter(delivery=delivery).order_by("number")
    assert list(attempts.values_list("number", "status_code", "outcome")) == [(1, 500, "fail"), (2, 200, "success")]
