"""With CACHE_URL set, the API throttle counts across web processes: two gunicorn servers, one budget."""

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support import processes
from webhookhub.accounts.services import create_api_key

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BIN = Path(sys.executable).parent


def _get(port: int, key: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/event-types/", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        json.loads(error.read())  # still the API's JSON error body
        return error.code


def _serve(env: dict[str, str], log_dir: Path) -> tuple[processes.Process, int]:
    port = processes.free_port()
    server = processes.Process(
        "web", [str(BIN / "gunicorn"), "webhookhub.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"], env, log_dir
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return server, port
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"the web server did not start:\n{server.log()[-2000:]}")
            time.sleep(0.2)


def test_two_web_processes_share_one_throttle_budget(e2e, tenant):
    cache = processes.private_redis(e2e.log_dir, "the shared-cache test")
    key = create_api_key(tenant=tenant, name="throttled").key
    env = processes.process_env(CACHE_URL=cache.url, WEBHOOKHUB_API_KEY_RATE="4/min", DEBUG="false")
    first, second = _serve(env, e2e.log_dir), _serve(env, e2e.log_dir)
    try:
        (_, port_a), (_, port_b) = first, second
        statuses = [_get(port_a, key), _get(port_b, key), _get(port_a, key), _get(port_b, key)]
        over = [_get(port_a, key), _get(port_b, key)]
    finally:
        first[0].stop()
        second[0].stop()
        cache.stop()

    assert statuses == [200, 200, 200, 200]
    assert over == [429, 429]  # each process alone has had only 2 of its 4: the count is shared
