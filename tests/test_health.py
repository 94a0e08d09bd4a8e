"""/healthz answers while the process runs; /readyz says whether the database and the broker can be reached."""

import pytest
from django.test import Client

from webhookhub.celery import app

pytestmark = pytest.mark.django_db(transaction=True)  # the readiness probe queries from its own thread


def test_healthz_answers_without_authentication():
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_and_the_broker_answer():
    response = Client().get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "broker": "ok"}


@pytest.fixture
def broker_down(monkeypatch):
    unreachable = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    monkeypatch.setenv("CELERY_BROKER_URL", unreachable)  # Celery reads it before its own setting
    before = app.conf.broker_url
    app.conf.broker_url = unreachable
    yield
    app.conf.broker_url = before


def test_readyz_is_503_naming_the_broker_when_it_cannot_be_reached(broker_down):
    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unavailable"}
    assert b"127.0.0.1" not in response.content  # no address or credential in the answer


def test_the_probes_take_no_writes():
    assert Client().post("/readyz").status_code == 405
    assert Client().post("/healthz").status_code == 405
