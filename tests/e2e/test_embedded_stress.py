"""The embedded default under stress: ``./scripts/run`` as a new user runs it (SQLite, the filesystem broker,
web, worker and sweeper under the supervisor), three processes publishing in bursts, one endpoint refusing
connections for two minutes. No process exits, and every event reaches the healthy endpoints.

The settings are the demo's but faster (a sweep every 0.5 s, retries 1-4 s apart), so that the
dead endpoint's retries and the sweeps ring the broker all the time, beside the publishers' doorbells.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.support.processes import ROOT, Process, free_port
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

LOG_DIR = ARTIFACTS / "embedded-logs"
PUBLISHERS = 3
EVENTS_PER_BURST = 300
BURSTS = 3
BURST_EVERY_SECONDS = 40.0
REFUSING_SECONDS = 120.0


def _embedded_env(data_dir: Path, port: int) -> dict[str, str]:
    """No DATABASE_URL, no CELERY_BROKER_URL: the embedded default, in a folder of the test's own."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL") and not name.startswith("WEBHOOKHUB_")
    }
    env.update(
        WEBHOOKHUB_DATA_DIR=str(data_dir),
        PORT=str(port),
        WEBHOOKHUB_SWEEP_INTERVAL_SECONDS="0.5",
        WEBHOOKHUB_RETRY_SCHEDULE="1,2,3,4",
        WEBHOOKHUB_ALLOW_PRIVATE_NETWORKS="127.0.0.0/8",
        PYTHONUNBUFFERED="1",
    )
    if "WEBHOOKHUB_ENCRYPTION_KEY" in os.environ:
        env["WEBHOOKHUB_ENCRYPTION_KEY"] = os.environ["WEBHOOKHUB_ENCRYPTION_KEY"]
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def _wait_for_web(port: int, run: Process, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return
        except OSError:
            assert run.popen.poll() is None, f"scripts/run exited:\n{run.log()[-3000:]}"
            assert time.monotonic() < deadline, f"the web process did not answer:\n{run.log()[-3000:]}"
            time.sleep(0.5)


def _publish_burst(env: dict[str, str], burst: int) -> list[tuple[Process, Path]]:
    started = []
    for n in range(PUBLISHERS):
        out = LOG_DIR / f"published-{burst}-{n}-{uuid.uuid4().hex[:6]}.jsonl"
        args = [sys.executable, "-m", "tests.support.publisher", "--tenant", "demo", "--rate", "1000"]
        args += ["--seconds", str(EVENTS_PER_BURST / 1000), "--out", str(out)]
        started.append((Process(f"publisher-{burst}-{n}", args, env, LOG_DIR), out))
    return started


def _promised(out: Path) -> set[str]:
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return {row["id"] for row in rows if "id" in row}


def _exits(run: Process) -> list[str]:
    return [line for line in run.log().splitlines() if line.startswith("webhookhub:") and " exited " in line]


def test_the_embedded_default_survives_bursts_of_publishing_and_a_refusing_endpoint(tmp_path):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = _embedded_env(tmp_path / "data", free_port())
    healthy = [Receiver().start(), Receiver().start()]
    refusing_port = free_port()  # nothing listens here for the first two minutes
    run = Process("scripts-run", ["bash", str(ROOT / "scripts" / "run")], env, LOG_DIR)
    back: Receiver | None = None
    try:
        _wait_for_web(int(env["PORT"]), run)
        run.wait_for_log(" ready.", timeout=120)  # the worker
        for receiver in healthy:
            _manage(env, "add_endpoint", "--tenant", "demo", "--url", receiver.url(), "--event-type", "*")
        _manage(env, "add_endpoint", "--tenant", "demo", "--url", f"http://127.0.0.1:{refusing_port}/hook")
        started_at = time.monotonic()

        publishers: list[tuple[Process, Path]] = []
        for burst in range(BURSTS):
            time.sleep(max(0.0, started_at + burst * BURST_EVERY_SECONDS - time.monotonic()))
            publishers += _publish_burst(env, burst)
        for publisher, _ in publishers:
            publisher.popen.wait(timeout=300)
            assert publisher.popen.returncode == 0, publisher.log()[-3000:]
        promised = set().union(*(_promised(out) for _, out in publishers))
        assert len(promised) >= 0.9 * PUBLISHERS * EVENTS_PER_BURST * BURSTS, "most publish() calls must succeed"

        time.sleep(max(0.0, started_at + REFUSING_SECONDS - time.monotonic()))
        back = Receiver(port=refusing_port).start()

        deadline = time.monotonic() + 300
        for receiver in healthy:
            while missing := promised - {request.headers["webhook-id"] for request in list(receiver.requests)}:
                assert time.monotonic() < deadline, f"{len(missing)} events never reached {receiver.url()}"
                assert run.popen.poll() is None, f"scripts/run stopped:\n{run.log()[-3000:]}"
                time.sleep(0.5)
        assert not _exits(run), _exits(run)
        assert run.popen.poll() is None, "scripts/run stopped"
    finally:
        run.stop()
        for receiver in [*healthy, *([back] if back else [])]:
            receiver.stop()
