"""The ``WEBHOOKHUB`` settings dict, read with defaults (like DRF's ``api_settings``)."""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Fernet keys, newest first; the first encrypts, all decrypt.
    "ENCRYPTION_KEYS": [],
    "ENCRYPTION_KEY_DERIVED": False,
    # CIDRs that endpoint URLs may resolve to although they are not public.
    "ALLOW_PRIVATE_NETWORKS": [],
    "REQUIRE_HTTPS": False,
    "MAX_PAYLOAD_BYTES": 256 * 1024,
    # Event data that breaks its type's JSON Schema: "off" (not checked), "warn" (published, logged and
    # counted in /metrics) or "enforce" (refused); an event type may set its own (events.schemas).
    "SCHEMA_MODE": "warn",
    # Seconds to wait after attempt 1, 2, ...; len + 1 attempts in all.
    "RETRY_SCHEDULE": [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600],
    # Schedules an endpoint may choose by name (its retry_schedule), and the bounds of one it lists itself.
    "RETRY_SCHEDULES": {
        "quick": [5, 30, 120, 600, 1800],
        "standard": [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600],
        "patient": [60, 10 * 60, 3600, 6 * 3600, 12 * 3600, 24 * 3600, 24 * 3600, 24 * 3600],
    },
    "RETRY_SCHEDULE_MAX_RETRIES": 20,
    "RETRY_DELAY_MIN_SECONDS": 1,
    "RETRY_DELAY_MAX_SECONDS": 24 * 3600,
    "RETRY_JITTER": 0.2,
    "RETRY_AFTER_MAX_SECONDS": 3600,
    "CONNECT_TIMEOUT_SECONDS": 5.0,
    "TOTAL_TIMEOUT_SECONDS": 15.0,
    "MAX_RESPONSE_BYTES": 64 * 1024,
    "STORED_RESPONSE_BYTES": 16 * 1024,
    # A claimed delivery belongs to its worker this long; the worker renews it every third of it
    # while the delivery waits or is being sent, so it bounds the recovery after a crash, not a send.
    "SEND_LEASE_SECONDS": 30.0,
    "SWEEP_INTERVAL_SECONDS": 2.0,
    "SWEEP_MAX_DOORBELLS": 16,
    # Deliveries one worker claims at a time; a drain task claims batch after batch
    # for at most DRAIN_MAX_SECONDS, then rings for another.
    "DRAIN_BATCH_SIZE": 100,
    "DRAIN_MAX_SECONDS": 5.0,
    # A publishing process sends at most one doorbell per interval (shorter when quiet).
    "DOORBELL_INTERVAL_SECONDS": 0.005,
    "DOORBELL_MAX_INTERVAL_SECONDS": 0.04,
    "SEND_CONCURRENCY": 64,  # sending threads per worker process (it leases at most 4 deliveries per thread)
    "AUTO_DISABLE_AFTER_SECONDS": 5 * 24 * 3600,
    # The bounds of an endpoint's own auto_disable_after_seconds.
    "AUTO_DISABLE_MIN_SECONDS": 3600,
    "AUTO_DISABLE_MAX_SECONDS": 30 * 24 * 3600,
    # The tenant's admins are e-mailed when an endpoint has been failing this long, and at these shares of its
    # auto-disable period (each once per failing spell; points at or past the period are left out).
    "DISABLE_WARNING_AFTER_SECONDS": 3600,
    "DISABLE_WARNING_SHARES": [0.5, 0.9],
    # The deployment's public address (scheme, host, port; e.g. https://webhooks.example.com), for links in
    # e-mails; empty: the e-mails carry none.
    "PUBLIC_URL": "",
    "SECRET_ROTATION_GRACE_SECONDS": 24 * 3600,
    "USER_AGENT": "webhookhub/0.1",
    # Inbound triggers: requests per minute per trigger unless the trigger sets its own.
    "TRIGGER_RATE_LIMIT_PER_MINUTE": 600,
    "TRIGGER_LOGGED_BODY_CHARS": 1000,
    "TRIGGER_LOG_RETENTION_DAYS": 30,
    # Events older than this whose deliveries are all finished are purged with them (the sweeper).
    "RETENTION_DAYS": 30,
    # An ordering key whose oldest pending delivery waits this long, with others behind it, counts as blocked
    # (dashboard, /metrics).
    "ORDERING_BLOCKED_AFTER_SECONDS": 3600,
    # GET /metrics answers a scraper presenting this Bearer token; unset: /metrics is off (404).
    "METRICS_TOKEN": "",
    # Split every metric by tenant (slug). Off by default: one series per tenant adds up.
    "METRICS_TENANT_LABELS": False,
    # How workers learn of new work: "notify" (PostgreSQL LISTEN/NOTIFY, raised by the publishing
    # statement itself), "broker" (a doorbell message through Celery's broker), or "auto": notify
    # on PostgreSQL, broker otherwise.
    "WAKE_UP": "auto",
}


def webhookhub_settings() -> dict[str, Any]:
    """Defaults overlaid with ``settings.WEBHOOKHUB``; read per call so test overrides apply."""
    return {**DEFAULTS, **getattr(settings, "WEBHOOKHUB", {})}


def setting(name: str) -> Any:
    if name not in DEFAULTS:
        raise KeyError(f"Unknown WEBHOOKHUB setting {name!r}")
    return getattr(settings, "WEBHOOKHUB", {}).get(name, DEFAULTS[name])
