"""A real worker warns the tenant's admins by e-mail, from a Celery task, before it disables a failing endpoint:
each configured point once, then the disable notice, with the endpoint's own (short) period."""

import email
import re
import time
from email.message import Message

import pytest
from django.urls import reverse

from accounts.models import Role
from subscriptions.models import Endpoint, EndpointHealth
from tests.factories import MembershipFactory, make_endpoint
from tests.support.receiver import Reply
from tests.support.waiting import wait_until
from webhookhub import publish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PERIOD_SECONDS = 12  # the endpoint's own auto-disable period
# Warned 2 s into the spell and at half the period (6 s); disabled at 12 s.
WARNING_ENV = {"WEBHOOKHUB_DISABLE_WARNING_AFTER_SECONDS": "2", "WEBHOOKHUB_DISABLE_WARNING_SHARES": "0.5"}


def _mails(mail_dir) -> list[Message]:
    """Every message the file-based backend wrote (one file per connection, messages split by a rule)."""
    found = []
    for path in sorted(mail_dir.glob("*.log")):
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip():
                found.append(email.message_from_string(chunk.strip()))
    return found


def _failing_for_seconds(mail: Message) -> int:
    """How long the endpoint had been failing when the warning was written ("... UTC (3 seconds): ...")."""
    found = re.search(r"UTC \((\d+) seconds?\)", mail.get_payload())
    assert found, mail.get_payload()
    return int(found.group(1))


def test_a_failing_endpoint_is_warned_at_each_point_once_by_email_then_disabled(e2e, tenant, receiver, tmp_path):
    admin = MembershipFactory(tenant=tenant, role=Role.ADMIN).user
    MembershipFactory(tenant=tenant, role=Role.MANAGER)
    receiver.default = Reply(status=400, body=b"unknown field")  # a failure that opens no circuit: retried
    endpoint = make_endpoint(tenant, receiver.url(), name="orders").endpoint
    Endpoint.objects.filter(pk=endpoint.pk).update(auto_disable_after_seconds=PERIOD_SECONDS)
    mail_dir = tmp_path / "mail"
    e2e.env.update(
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
        WEBHOOKHUB_PUBLIC_URL="https://hooks.example.com",
        **WARNING_ENV,
    )
    e2e.start_all()

    # Events keep coming while it fails, so the worker records a batch every fraction of a second.
    deadline = time.monotonic() + PERIOD_SECONDS + 30
    while Endpoint.objects.get(pk=endpoint.pk).enabled and time.monotonic() < deadline:
        publish(tenant=tenant, type="message.received", data={"id": "msg_1"}, endpoint_ids=[endpoint.pk])
        time.sleep(0.25)

    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert "(12 seconds or more of failures)" in endpoint.disabled_reason
    mails = wait_until(lambda: len(found := _mails(mail_dir)) >= 3 and found, timeout=30)
    time.sleep(2)  # no late duplicate
    mails = _mails(mail_dir)
    warnings = [mail for mail in mails if mail["Subject"].startswith("[webhookhub] Endpoint failing: orders")]
    disabled = [mail for mail in mails if mail["Subject"].startswith("[webhookhub] Endpoint disabled")]
    assert (len(warnings), len(disabled)) == (2, 1), [mail["Subject"] for mail in mails]
    assert {mail["To"] for mail in mails} == {admin.email}  # the manager gets none
    first, second = sorted(warnings, key=_failing_for_seconds)
    assert 2 <= _failing_for_seconds(first) < 6 <= _failing_for_seconds(second) < PERIOD_SECONDS
    link = "https://hooks.example.com" + reverse("dashboard:endpoint", args=[endpoint.pk])
    for mail in warnings:
        body = mail.get_payload()
        assert "Last answer: HTTP 400" in body
        assert f"Endpoint page: {link}" in body
    health = EndpointHealth.objects.get(endpoint=endpoint)
    assert (health.warned_spell, health.warnings_sent) == (health.failing_since, 2)
