"""With CACHE_URL set, the API throttle counts across web processes: two gunicorn servers, one budget."""

import json
import urllib.error
import urllib.request

import pytest

from accounts.services import create_api_key
from tests.support import processes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


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


def test_two_web_processes_share_one_throttle_budget(e2e, tenant):
    cache = processes.private_redis(e2e.log_dir, "the shared-cache test")
    key = create_api_key(tenant=tenant, name="throttled").key
    env = processes.process_env(CACHE_URL=cache.url, WEBHOOKHUB_API_KEY_RATE="4/min", DEBUG="false")
    first, second = processes.start_web(env, e2e.log_dir), processes.start_web(env, e2e.log_dir)
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
