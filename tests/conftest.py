import os
import socket
from urllib.parse import urlsplit

import pytest
from django.db import connection

from deliveries.services.wakeups import listening_connection
from events import schemas
from tests.factories import TenantFactory
from tests.support.broker import captured_queue
from tests.support.receiver import Receiver


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=3):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    """In CI the suite must run on the real PostgreSQL and Redis, never silently on SQLite."""
    if os.environ.get("CI", "").lower() != "true":
        return
    database_url = os.environ.get("DATABASE_URL", "")
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    problems = []
    if not database_url.startswith(("postgres://", "postgresql://")):
        problems.append("DATABASE_URL must point at PostgreSQL when CI=true")
    elif not _reachable(database_url, 5432):
        problems.append(f"PostgreSQL at {database_url} is unreachable")
    if not broker_url.startswith("redis://"):
        problems.append("CELERY_BROKER_URL must point at Redis when CI=true")
    elif not _reachable(broker_url, 6379):
        problems.append(f"Redis at {broker_url} is unreachable")
    if problems:
        pytest.exit("; ".join(problems), returncode=3)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users are made per test; the production hasher would spend most of the run hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_schemas():
    """Each process keeps event types' schemas and modes for a while (``events.schemas``); a test's rolled-back
    change of one must not reach the next test."""
    schemas.forget()
    schemas.reset_log_limits()
    yield
    schemas.forget()
    schemas.reset_log_limits()


@pytest.fixture
def tenant(db):
    return TenantFactory()


@pytest.fixture
def other_tenant(db):
    return TenantFactory()


@pytest.fixture
def broker(settings):
    """The real broker's default queue, emptied before and after the test (``broker.messages()`` reads it);
    workers are woken through it (``WAKE_UP`` broker), whatever the database."""
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "WAKE_UP": "broker"}
    with captured_queue() as queue:
        yield queue


@pytest.fixture
def wake_ups(transactional_db):
    """What the workers hear with NOTIFY wake-ups (PostgreSQL only): ``wake_ups.heard()`` are the payloads
    notified since the test started (a notification is sent when its transaction commits)."""
    if connection.vendor != "postgresql":
        pytest.skip("NOTIFY wake-ups need PostgreSQL")
    with listening_connection() as listening:

        class Heard:
            def heard(self, wait: float = 0.5) -> list[str]:
                return [notify.payload for notify in listening.notifies(timeout=wait)]

        yield Heard()


@pytest.fixture
def loopback_receivers(settings):
    """Lets deliveries reach test receivers on 127.0.0.1 over plain HTTP (the address policy refuses both)."""
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"], "REQUIRE_HTTPS": False}


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()
