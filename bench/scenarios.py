"""Benchmark scenarios the shared harness does not run: fan-out, isolation, backlog drain.

    .venv/bin/python -m bench.scenarios [--only fanout,isolation,backlog] [--backlog 100000]

Same database, broker and worker command as bench/webhookhub.json (PostgreSQL
``bench_webhookhub``, Redis db 3, ``celery worker -P prefork -c 2`` plus beat), and the
shared harness's receiver (../shared/bench/receiver.py, run with the harness's venv).
Everything talks to 127.0.0.1; every wait is bounded. Writes bench/results/scenarios-*.json.
"""

import argparse
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = Path(os.environ.get("BENCH_HARNESS", ROOT.parent / "shared" / "bench"))
HARNESS_PYTHON = os.environ.get("BENCH_VENV", "/tmp/benchvenv") + "/bin/python"
PORT = 18090
RECEIVER = f"http://127.0.0.1:{PORT}"
ADAPTER_ENV = json.loads((ROOT / "bench" / "webhookhub.json").read_text())["env"]


def _env() -> dict[str, str]:
    return {**os.environ, **ADAPTER_ENV, "PYTHONPATH": str(ROOT)}


def _start(args: list[str], log: Path) -> subprocess.Popen:
    handle = log.open("wb")
    return subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _receiver(path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(f"{RECEIVER}{path}", data=data, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read() or b"{}")


def _wait(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


class Platform:
    """Receiver, worker and beat, started and stopped around a scenario."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.processes: list[subprocess.Popen] = []

    def start_receiver(self) -> None:
        receiver = _start([HARNESS_PYTHON, str(HARNESS / "receiver.py"), "--port", str(PORT)], self.run_dir / "rx.log")
        self.processes.append(receiver)
        if not _wait(lambda: self._healthy(), 20, 0.2):
            raise RuntimeError("receiver did not start")

    @staticmethod
    def _healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{RECEIVER}/health", timeout=2):  # noqa: S310 - loopback
                return True
        except OSError:
            return False

    def start_workers(self) -> list[int]:
        celery = str(ROOT / ".venv" / "bin" / "celery")
        name = f"scenario-{uuid.uuid4().hex[:6]}@%h"
        worker = _start(
            [celery, "-A", "webhookhub", "worker", "-P", "prefork", "-c", "2", "-l", "WARNING", "-n", name,
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            self.run_dir / "worker.log",
        )  # fmt: skip
        beat = _start(
            [celery, "-A", "webhookhub", "beat", "-l", "WARNING", "-s", str(self.run_dir / "beat-schedule")],
            self.run_dir / "beat.log",
        )
        self.processes += [worker, beat]
        time.sleep(4)
        children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
        return [worker.pid, *map(int, children)]

    def stop_workers(self) -> None:
        for process in self.processes[1:]:
            _stop(process)
        del self.processes[1:]

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop(process)


def _tenant_with_endpoints(paths: list[str]):
    from django.core.management import call_command

    from deliveries.models import Delivery
    from events.models import Event
    from subscriptions.services import create_endpoint
    from webhookhub.accounts.models import Tenant

    call_command("migrate", verbosity=0)
    Delivery.objects.all().delete()
    Event.objects.all().delete()
    tenant, _ = Tenant.objects.get_or_create(slug="bench-scenarios", defaults={"name": "Benchmark scenarios"})
    tenant.endpoints.all().delete()
    for path in paths:
        create_endpoint(tenant=tenant, url=f"{RECEIVER}{path}", event_types=["message.received"])
    return tenant


def _arrivals(event_id: str, expected: int) -> list[float] | None:
    """Arrival times of ``event_id`` once it reached ``expected`` endpoints, else None."""
    times = [arrived for arrived, received_id in _receiver("/events")["events"] if received_id == event_id]
    return times if len(times) >= expected else None


def fanout(platform: Platform, trials: int = 5, endpoints: int = 100) -> dict:
    """One event to 100 endpoints: time from publish to the last of the 100 arrivals."""
    from bench.common import message_data
    from webhookhub import publish

    tenant = _tenant_with_endpoints([f"/hooks/fanout/{n:03d}" for n in range(endpoints)])
    _receiver("/reset", {"dedupe_by_path": True})
    platform.start_workers()
    times = []
    for trial in range(trials + 1):  # the first one warms connections up and is not counted
        started = time.time()
        event = publish(tenant=tenant, type="message.received", data=message_data("fanout", trial))
        arrived = _wait(lambda event_id=event.id: _arrivals(event_id, endpoints), timeout=30)
        if arrived is None:
            raise RuntimeError("fan-out event not fully delivered within 30 s")
        if trial:
            times.append(round(1000 * (max(arrived) - started), 1))
    stats = _receiver("/stats")
    platform.stop_workers()
    return {"endpoints": endpoints, "trials_ms": times, "max_ms": max(times), "duplicates": stats["duplicates"]}


def _paced_latencies(tenant, rate: float, seconds: float, healthy_prefix: str) -> tuple[list[float], int]:
    from bench.common import message_data
    from webhookhub import publish

    run = uuid.uuid4().hex[:8]
    sent: dict[str, float] = {}
    start = time.time()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        sent_at = time.time()
        sent[publish(tenant=tenant, type="message.received", data=message_data(run, i)).id] = sent_at
    _wait(lambda: _receiver("/stats")["by_path"].get(healthy_prefix, {}).get("unique", 0) >= len(sent), 60, 0.25)
    arrivals: dict[str, float] = {}
    for arrived, event_id in _receiver("/events")["events"]:
        if event_id in sent:
            arrivals.setdefault(event_id, arrived)
    latencies = sorted(1000 * (arrivals[event_id] - sent[event_id]) for event_id in arrivals)
    return latencies, len(sent) - len(arrivals)


def _p99(values: list[float]) -> float:
    return round(values[min(len(values) - 1, int(0.99 * len(values)))], 1) if values else float("nan")


def isolation(platform: Platform, rate: float = 50, seconds: float = 20) -> dict:
    """The healthy endpoint's p99 at 50 events/s, alone and next to an endpoint that never answers."""
    results = {}
    for label, paths in (("alone", ["/hooks/ok"]), ("beside_stalled", ["/hooks/ok", "/hooks/stall"])):
        tenant = _tenant_with_endpoints(paths)
        _receiver("/reset", {"dedupe_by_path": True, "path_latency_ms": {"/hooks/stall": 600_000}})
        platform.start_workers()
        latencies, lost = _paced_latencies(tenant, rate, seconds, "/hooks/ok")
        platform.stop_workers()
        results[label] = {
            "p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
            "p99_ms": _p99(latencies),
            "healthy_lost": lost,
        }
    results["p99_ratio"] = round(results["beside_stalled"]["p99_ms"] / results["alone"]["p99_ms"], 2)
    return results


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def backlog(platform: Platform, count: int) -> dict:
    """``count`` pending deliveries written straight into the database, then drained by fresh workers."""
    from django.db import connection

    from bench.common import TEXT

    tenant = _tenant_with_endpoints(["/hooks/backlog"])
    endpoint_id = tenant.endpoints.get().pk
    body = json.dumps({"type": "message.received", "data": {"text": TEXT}})[1:]  # the envelope after "{"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_event (id, tenant_id, type, data, body, occurred_at, created_at, source)"
            " SELECT 'evt_backlog' || lpad(g::text, 9, '0'), %s, 'message.received', '{}'::jsonb,"
            " '{\"id\":\"evt_backlog' || lpad(g::text, 9, '0') || '\",' || %s, now(), now(), 'app'"
            " FROM generate_series(1, %s) g",
            [tenant.pk, body, count],
        )
        cursor.execute(
            "INSERT INTO deliveries_delivery (event_id, endpoint_id, status, attempt_count, next_attempt_at,"
            " last_error, created_at) SELECT id, %s, 'pending', 0, now(), '', now() FROM events_event"
            " WHERE tenant_id = %s",
            [endpoint_id, tenant.pk],
        )
    _receiver("/reset", {})
    started = time.time()
    pids = platform.start_workers()
    peak = dict.fromkeys(pids, 0.0)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        for pid in pids:
            peak[pid] = max(peak[pid], _rss_mb(pid))
        if _receiver("/stats")["unique"] >= count:
            break
        time.sleep(0.5)
    elapsed = time.time() - started
    stats = _receiver("/stats")
    platform.stop_workers()
    return {
        "deliveries": count,
        "delivered_unique": stats["unique"],
        "duplicates": stats["duplicates"],
        "drain_seconds_including_worker_start": round(elapsed, 1),
        "deliveries_per_s": round(stats["unique"] / elapsed, 1),
        "peak_rss_mb_per_process": sorted(round(value, 1) for value in peak.values()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="fanout,isolation,backlog")
    parser.add_argument("--backlog", type=int, default=100_000)
    args = parser.parse_args(argv)

    os.environ.update(ADAPTER_ENV)
    from bench.tool import ensure_database

    ensure_database()
    from bench.common import setup_django

    setup_django()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(f"/tmp/webhookhub-scenarios-{stamp}")
    run_dir.mkdir(parents=True)
    platform = Platform(run_dir)
    results: dict = {"stamp": stamp}
    try:
        platform.start_receiver()
        for name in args.only.split(","):
            print(f"== {name}", flush=True)
            if name == "fanout":
                results[name] = fanout(platform)
            elif name == "isolation":
                results[name] = isolation(platform)
            elif name == "backlog":
                results[name] = backlog(platform, args.backlog)
            print(json.dumps(results[name]), flush=True)
    finally:
        platform.stop()
    out = ROOT / "bench" / "results" / f"scenarios-{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}  logs: {run_dir}")


if __name__ == "__main__":
    main()
