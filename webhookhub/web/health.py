"""Probes for load balancers and orchestrators (no authentication, no secrets in the answers).

- ``GET /healthz``: liveness. The process answers; nothing else is touched.
- ``GET /readyz``: readiness. The database answers a query and the broker accepts a
  connection, each within ``READINESS_TIMEOUT_SECONDS``; 200 ``{"database": "ok", "broker": "ok"}``,
  else 503 naming what is down (``"unavailable"``). Only the kind of failure is said, never an
  address or a credential.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ground.db import database_reachable
from webhookhub.celery import app

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0
_probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhookhub-readiness")


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database() -> bool:
    try:
        return database_reachable()
    finally:
        connections.close_all()  # this probe thread's connection


def _broker() -> bool:
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=READINESS_TIMEOUT_SECONDS)
        return True


@never_cache
@require_GET
def readyz(request):
    checks = {"database": _probes.submit(_database), "broker": _probes.submit(_broker)}
    result = {}
    for name, future in checks.items():
        try:
            up = future.result(timeout=READINESS_TIMEOUT_SECONDS)
        except FutureTimeout:
            up = False
            logger.warning("Readiness: the %s did not answer within %s s.", name, READINESS_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - any failure to reach it means not ready
            up = False
            logger.warning("Readiness: the %s is unavailable (%s).", name, type(exc).__name__)
        result[name] = "ok" if up else "unavailable"
    ready = all(value == "ok" for value in result.values())
    return JsonResponse(result, status=200 if ready else 503)
