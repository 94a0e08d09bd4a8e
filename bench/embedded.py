"""The embedded default (``scripts/run``: SQLite, a broker that needs no server): latency from publish to
arrival, and what the worker and beat cost while idle, for a choice of broker.

    .venv/bin/python -m bench.embedded [--broker filesystem|none] [--events 200] [--idle 60]

``filesystem`` is the default (``ground.embedded_broker``); ``none`` is no broker at all
(``memory://``: each process its own queue, so only the workers' sweeps start deliveries). Run from
a checkout of an older commit, ``filesystem`` measures what that commit's embedded default did.
Everything runs in a temporary folder; prints one JSON line.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.support.processes import ROOT, free_port
from tests.support.receiver import Receiver

BROKERS = {
    "filesystem": {},
    "none": {"CELERY_BROKER_URL": "memory://"},
}


def _env(data_dir: Path, port: int, broker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL")}
    env = {k: v for k, v in env.items() if not k.startswith("WEBHOOKHUB_")}
    env.update(WEBHOOKHUB_DATA_DIR=str(data_dir), PORT=str(port), WEBHOOKHUB_ALLOW_PRIVATE_NETWORKS="127.0.0.0/8")
    env.update(BROKERS[broker], DJANGO_SETTINGS_MODULE="webhookhub.settings")
    return env


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _processes(parent: int) -> dict[str, list[int]]:
    """The supervisor's children and grandchildren, grouped as worker, beat and web."""
    found: dict[str, list[int]] = {"worker": [], "beat": [], "web": []}
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,args="], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        pid, pgid, args = line.split(None, 2)
        if int(pgid) != parent:
            continue
        for name, marker in (("worker", " worker "), ("beat", " beat "), ("web", "runserver")):
            if marker in args:
                found[name].append(int(pid))
    return found


def measure(broker: str, events: int, idle_seconds: float) -> dict[str, object]:
    receiver = Receiver().start()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = _env(Path(folder), port, broker)
        run = subprocess.Popen(  # noqa: S603
            ["bash", str(ROOT / "scripts" / "run")],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()  # noqa: S310
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            time.sleep(5)  # the worker is up
            subprocess.run(
                [sys.executable, "manage.py", "add_endpoint", "--tenant", "demo", "--url", receiver.url()],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            script = (
                "import django, json, sys, time; django.setup()\n"
                "from webhookhub import publish\nfrom accounts.models import Tenant\n"
                "from deliveries.services import doorbell\n"
                "tenant = Tenant.objects.get(slug='demo'); out = {}\n"
                f"for n in range({events}):\n"
                "    time.sleep(0.2)\n"
                "    out[publish(tenant=tenant, type='message.received', data={'n': n}).id] = time.time()\n"
                "doorbell.flush(); print(json.dumps(out))\n"
            )
            published = json.loads(
                subprocess.run(
                    [sys.executable, "-c", script],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            receiver.wait_for(events, timeout=120)
            arrived = {r.headers["webhook-id"]: r.at for r in receiver.requests}
            latencies = sorted((arrived[event_id] - at) * 1000 for event_id, at in published.items())
            time.sleep(5)  # settle
            pids = _processes(run.pid)
            before = {name: _cpu_seconds(ids) for name, ids in pids.items()}
            time.sleep(idle_seconds)
            after = {name: _cpu_seconds(ids) for name, ids in pids.items()}
            idle = {name: round(100 * (after[name] - before[name]) / idle_seconds, 2) for name in pids}
        finally:
            os.killpg(run.pid, 15)
            run.wait(timeout=60)
            receiver.stop()
    return {
        "broker": broker,
        "events": events,
        "latency_ms_p50": round(statistics.median(latencies), 1),
        "latency_ms_p99": round(latencies[int(0.99 * (len(latencies) - 1))], 1),
        "latency_ms_max": round(latencies[-1], 1),
        "idle_cpu_percent_of_a_core": idle,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", choices=sorted(BROKERS), default="filesystem")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.broker, args.events, args.idle)))


if __name__ == "__main__":
    main()
