"""/healthz answers while the process runs; /readyz says whether the database and the broker can be reached.

What each says when the database or the broker is down: tests/e2e/test_operations_e2e.py (a real web
process pointed at a dead one, so no test changes this process's connections)."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)  # the readiness probe queries from its own thread


def test_healthz_answers_without_authentication():
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_and_the_broker_answer():
    response = Client().get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_the_probes_take_no_writes():
    assert Client().post("/readyz").status_code == 405
    assert Client().post("/healthz").status_code == 405
