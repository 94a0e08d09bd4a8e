"""Mutual TLS settings checked at save (``check_tls``), the expiry shown and warned about (``expiry_warning``), and
the periodic e-mail to the tenant's admins about certificates that expire within 14 days."""

import datetime as dt
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Role
from ground.task_names import WARN_EXPIRING_CERTIFICATES_TASK
from subscriptions.certificates import EXPIRY_WARNING_DAYS, CheckedTls, check_tls, expiry_warning
from subscriptions.expiring_certificates import warn_expiring_certificates
from subscriptions.models import Endpoint
from subscriptions.services import update_endpoint
from subscriptions.tasks import warn_expiring_certificates_task
from tests.factories import URL, MembershipFactory, make_endpoint
from tests.support.tls import CertificateAuthority, Pair
from tests.support.tls_chains import ChainedAuthority

CA = CertificateAuthority()
NOW = timezone.now()


def _valid(days: int = 30) -> Pair:
    return CA.issue("hub client", not_after=NOW + timedelta(days=days))


def _encrypted(key_pem: str) -> str:
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()


def _check(*, url: str = URL, certificate="", key=None, ca_certificate="") -> CheckedTls:
    return check_tls(url=url, certificate=certificate, key=key, ca_certificate=ca_certificate, now=NOW)


def _refusal(**given) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as raised:
        _check(**given)
    return raised.value.message_dict


# --- check_tls ---------------------------------------------------------------------------------------------------


def test_a_matching_pair_is_kept_with_its_expiry():
    pair = CA.issue("hub client", not_after=dt.datetime(2031, 5, 6, 7, 8, tzinfo=dt.UTC))

    checked = _check(certificate=pair.certificate, key=pair.key, ca_certificate=CA.certificate)

    assert checked == CheckedTls(
        pair.certificate, pair.key, CA.certificate, dt.datetime(2031, 5, 6, 7, 8, tzinfo=dt.UTC)
    )


def test_nothing_set_is_no_tls():
    assert _check() == CheckedTls("", None, "", None)


def test_a_ca_alone_is_kept():
    assert _check(ca_certificate=CA.certificate) == CheckedTls("", None, CA.certificate, None)


def test_pem_is_kept_trimmed_with_one_final_newline():
    pair = _valid()

    checked = _check(certificate=f"\n  {pair.certificate}\n\n", key=pair.key.strip())

    assert (checked.certificate, checked.key) == (pair.certificate, pair.key)


def test_a_chain_with_its_intermediate_is_accepted_and_expires_with_its_leaf():
    pair = ChainedAuthority().issue_client("hub client")

    checked = _check(certificate=pair.certificate, key=pair.key)

    assert checked.certificate.count("BEGIN CERTIFICATE") == 2
    assert checked.expires_at is not None and checked.expires_at - NOW < timedelta(days=31)  # the leaf's, not 365


EXPIRED = CA.issue("old", not_before=NOW - timedelta(days=40), not_after=NOW - timedelta(days=1))
NOT_YET = CA.issue("early", not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=30))
PAIR, OTHER = _valid(), _valid()


@pytest.mark.parametrize(
    ("given", "field", "said"),
    [
        ({"certificate": PAIR.certificate, "key": OTHER.key}, "tls_client_key", "does not belong to the client cert"),
        ({"certificate": EXPIRED.certificate, "key": EXPIRED.key}, "tls_client_certificate", "The certificate expired"),
        ({"certificate": NOT_YET.certificate, "key": NOT_YET.key}, "tls_client_certificate", "is not valid before"),
        ({"certificate": PAIR.certificate, "key": _encrypted(PAIR.key)}, "tls_client_key", "protected by a password"),
        (
            {"url": "http://93.184.216.34/hook", "certificate": PAIR.certificate, "key": PAIR.key},
            "tls_client_certificate",
            "need an https:// URL",
        ),
        ({"url": "http://93.184.216.34/hook", "ca_certificate": CA.certificate}, "tls_ca_certificate", "https://"),
        ({"certificate": "not a certificate", "key": PAIR.key}, "tls_client_certificate", "Not a PEM certificate"),
        (
            {"certificate": PAIR.certificate, "key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"},
            "tls_client_key",
            "Not a PEM",
        ),
        ({"ca_certificate": "garbage"}, "tls_ca_certificate", "Not a PEM certificate"),
        ({"key": PAIR.key}, "tls_client_certificate", "Give the client certificate that goes with the key"),
        ({"certificate": PAIR.certificate}, "tls_client_key", "Give the private key of the client certificate"),
        ({"certificate": PAIR.certificate.encode(), "key": PAIR.key}, "tls_client_certificate", "Give PEM text"),
        ({"ca_certificate": "x" * 70_000}, "tls_ca_certificate", "Longer than 65,536 characters"),
        ({"ca_certificate": "é\n" + CA.certificate}, "tls_ca_certificate", "PEM is ASCII text"),
        (
            {"certificate": PAIR.certificate + PAIR.key, "key": PAIR.key},
            "tls_client_certificate",
            "This holds a private key",
        ),
        ({"ca_certificate": CA.certificate + PAIR.key}, "tls_ca_certificate", "This holds a private key"),
    ],
    ids=[
        "mismatched key",
        "expired",
        "not yet valid",
        "encrypted key",
        "http URL with a pair",
        "http URL with a CA",
        "garbage certificate",
        "garbage key",
        "garbage CA",
        "key without certificate",
        "certificate without key",
        "bytes, not text",
        "too long",
        "non-ASCII around a CA (OpenSSL would raise)",
        "a combined .pem: the key would be shown with the certificate",
        "a key in the CA field",
    ],
)
def test_what_check_tls_refuses_names_the_field(given, field, said):
    refused = _refusal(**given)

    assert list(refused) == [field]
    assert said in refused[field][0]


def test_the_expired_date_is_shown():
    refused = _refusal(certificate=EXPIRED.certificate, key=EXPIRED.key)

    assert refused["tls_client_certificate"] == [
        f"The certificate expired on {(NOW - timedelta(days=1)).astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC."
    ]


def test_no_error_holds_the_private_key():
    for given in (
        {"certificate": PAIR.certificate, "key": OTHER.key},
        {"certificate": PAIR.certificate, "key": _encrypted(PAIR.key)},
        {"certificate": EXPIRED.certificate, "key": EXPIRED.key},
    ):
        text = str(_refusal(**given))
        key_lines = [line for line in given["key"].splitlines() if not line.startswith("-----")]
        assert not any(line in text for line in key_lines)


# --- expiry_warning ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "said"),
    [
        (timedelta(days=15), None),
        (timedelta(days=14, seconds=1), None),
        (timedelta(days=14), "expires in 14 days"),
        (timedelta(days=3, hours=5), "expires in 3 days"),
        (timedelta(days=1, hours=2), "expires in 1 day "),
        (timedelta(hours=5, minutes=30), "expires in 5 h"),
        (timedelta(minutes=10), "expires in 1 h"),
        (timedelta(0), "expired on"),
        (-timedelta(days=2), "expired on"),
    ],
)
def test_expiry_warning(left, said):
    expires_at = NOW + left

    warning = expiry_warning(expires_at, now=NOW)

    if said is None:
        assert warning is None
    else:
        assert said in warning
        assert f"{expires_at:%Y-%m-%d %H:%M} UTC" in warning


def test_no_certificate_no_warning():
    assert expiry_warning(None, now=NOW) is None


# --- the e-mails -------------------------------------------------------------------------------------------------


def _mtls_endpoint(tenant, days: float, name: str = "orders") -> Endpoint:
    pair = CA.issue("hub client", not_after=timezone.now() + timedelta(days=days))
    return make_endpoint(
        tenant, URL, name=name, tls_client_certificate=pair.certificate, tls_client_key=pair.key
    ).endpoint


@pytest.fixture
def admins(tenant):
    MembershipFactory(tenant=tenant, role=Role.USER)  # not told
    return sorted(MembershipFactory(tenant=tenant, role=Role.ADMIN).user.email for _ in range(2))


@pytest.mark.django_db
def test_admins_are_emailed_once_per_certificate(tenant, admins, mailoutbox):
    endpoint = _mtls_endpoint(tenant, days=10)
    now = timezone.now()

    assert warn_expiring_certificates(now=now) == 1
    assert warn_expiring_certificates(now=now + timedelta(hours=1)) == 0
    assert warn_expiring_certificates(now=now + timedelta(days=9)) == 0

    [mail] = mailoutbox
    assert sorted(mail.to) == admins
    assert mail.subject == "[webhookhub] Client certificate expiring: orders"
    assert "expires in 9 days" in mail.body  # 10 days less the moments the test took
    assert endpoint.url in mail.body and endpoint.pk in mail.body
    endpoint.refresh_from_db()
    assert endpoint.tls_expiry_warned_at == now


@pytest.mark.django_db
def test_a_warning_the_mail_server_did_not_take_is_sent_by_the_next_run(tenant, admins, mailoutbox, settings):
    endpoint = _mtls_endpoint(tenant, days=10)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    now = timezone.now()

    assert warn_expiring_certificates(now=now) == 0
    endpoint.refresh_from_db()
    assert endpoint.tls_expiry_warned_at is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert warn_expiring_certificates(now=now + timedelta(hours=1)) == 1
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_a_name_of_several_lines_makes_a_one_line_subject(tenant, admins, mailoutbox):
    _mtls_endpoint(tenant, days=10, name="orders\nand refunds")

    assert warn_expiring_certificates(now=timezone.now()) == 1

    assert mailoutbox[0].subject == "[webhookhub] Client certificate expiring: orders and refunds"


@pytest.mark.django_db
def test_a_certificate_more_than_14_days_out_is_not_warned_about_yet(tenant, admins, mailoutbox):
    _mtls_endpoint(tenant, days=20)
    now = timezone.now()

    assert warn_expiring_certificates(now=now) == 0
    assert mailoutbox == []
    assert warn_expiring_certificates(now=now + timedelta(days=20 - EXPIRY_WARNING_DAYS, minutes=1)) == 1
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_a_new_certificate_is_warned_about_afresh(tenant, admins, mailoutbox):
    endpoint = _mtls_endpoint(tenant, days=10)
    assert warn_expiring_certificates(now=timezone.now()) == 1
    endpoint.refresh_from_db()  # as the API and the admin load it
    assert endpoint.tls_expiry_warned_at is not None
    renewal = CA.issue("hub client", not_after=timezone.now() + timedelta(days=12))

    update_endpoint(endpoint=endpoint, tls_client_certificate=renewal.certificate, tls_client_key=renewal.key)
    endpoint.refresh_from_db()
    assert endpoint.tls_expiry_warned_at is None
    assert warn_expiring_certificates(now=timezone.now()) == 1

    first, second = mailoutbox
    assert "expires in 9 days" in first.body and "expires in 11 days" in second.body


@pytest.mark.django_db
def test_saving_the_same_certificate_again_does_not_warn_again(tenant, admins, mailoutbox):
    endpoint = _mtls_endpoint(tenant, days=10)
    warn_expiring_certificates(now=timezone.now())
    endpoint.refresh_from_db()  # as the API and the admin load it

    update_endpoint(endpoint=endpoint, tls_client_certificate=endpoint.tls_client_certificate)

    assert warn_expiring_certificates(now=timezone.now()) == 0
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_endpoints_without_a_certificate_or_whose_certificate_was_removed_are_not_warned(tenant, admins, mailoutbox):
    make_endpoint(tenant, URL, tls_ca_certificate=CA.certificate)
    removed = _mtls_endpoint(tenant, days=5)
    update_endpoint(endpoint=removed, tls_client_certificate="")

    assert warn_expiring_certificates(now=timezone.now()) == 0
    assert mailoutbox == []
    removed.refresh_from_db()
    assert (removed.tls_client_certificate, removed.tls_client_key) == ("", None)


@pytest.mark.django_db
def test_each_endpoint_is_its_own_mail_and_no_mail_holds_a_key(tenant, admins, mailoutbox):
    first, second = _mtls_endpoint(tenant, days=3, name="billing"), _mtls_endpoint(tenant, days=13, name="crm")

    assert warn_expiring_certificates(now=timezone.now()) == 2

    assert sorted(mail.subject.rsplit(": ", 1)[1] for mail in mailoutbox) == ["billing", "crm"]
    for endpoint in (first, second):
        key_lines = [line for line in endpoint.tls_client_key.splitlines() if not line.startswith("-----")]
        assert not any(line in mail.body for mail in mailoutbox for line in key_lines)


@pytest.mark.django_db
def test_the_periodic_task_warns(tenant, admins, mailoutbox):
    _mtls_endpoint(tenant, days=2)

    assert warn_expiring_certificates_task() == 1
    assert warn_expiring_certificates_task() == 0
    assert len(mailoutbox) == 1


def test_the_task_is_scheduled_hourly():
    from webhookhub.celery import app

    app.loader.import_default_modules()
    schedule = {entry["task"]: entry for entry in app.conf.beat_schedule.values()}

    assert WARN_EXPIRING_CERTIFICATES_TASK in app.tasks
    assert schedule[WARN_EXPIRING_CERTIFICATES_TASK]["schedule"] == 3600.0
