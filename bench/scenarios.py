"""Benchmark scenarios the shared harness does not run: fan-out, isolation, backlog drain,
per-endpoint scheduling (noisy neighbour, slow endpoint, rate limit on two nodes, down endpoint),
batch publishing, ordering keys, payload shapes in a fan-out, and adaptive concurrency.

    .venv/bin/python -m bench.scenarios [--only fanout,isolation,backlog,noisy,slow,rate,down,batch,ordered,
                                                fanout_shapes,adaptive]

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

    def start_workers(self, nodes: int = 1) -> list[int]:
        celery = str(ROOT / ".venv" / "bin" / "celery")
        workers = []
        for node in range(nodes):
            name = f"scenario-{uuid.uuid4().hex[:6]}@%h"
            workers.append(
                _start(
                    [
                        celery,
                        "-A",
                        "webhookhub",
                        "worker",
                        "-P",
                        "prefork",
                        "-c",
                        "2",
                        "-l",
                        "WARNING",
                        "-n",
                        name,
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                    ],
                    self.run_dir / f"worker-{node}.log",
                )
            )
        beat = _start(
            [celery, "-A", "webhookhub", "beat", "-l", "WARNING", "-s", str(self.run_dir / "beat-schedule")],
            self.run_dir / "beat.log",
        )
        self.processes += [*workers, beat]
        time.sleep(4)
        pids = []
        for worker in workers:
            children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout
            pids += [worker.pid, *map(int, children.split())]
        return pids

    def stop_workers(self) -> None:
        for process in self.processes[1:]:
            _stop(process)
        del self.processes[1:]

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop(process)


def _tenant_with_endpoints(paths: list[str], slug: str = "bench-scenarios", clear: bool = True, **fields):
    """A tenant whose endpoints are ``paths`` on the receiver (full URLs are taken as they are)."""
    from django.core.management import call_command

    from accounts.models import Tenant
    from deliveries.models import Delivery
    from events.models import Event
    from subscriptions.services import create_endpoint

    if clear:
        call_command("migrate", verbosity=0)
        Delivery.objects.all().delete()
        Event.objects.all().delete()
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": f"Benchmark {slug}"})
    tenant.endpoints.all().delete()
    for path in paths:
        url = path if path.startswith("http") else f"{RECEIVER}{path}"
        create_endpoint(tenant=tenant, url=url, event_types=["message.received"], **fields)
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


SHAPE = (
    "{event: type, sent_at: timestamp, message: {id: data.id, text: data.text, chat: data.chat_id},"
    " contact: data.contact}"
)


def fanout_shapes(platform: Platform, trials: int = 8, endpoints: int = 100) -> dict:
    """One event to 100 endpoints, alternating two tenants in one run: all on the standard envelope, and half on
    it, half on one custom shape (one more body rendered and stored per event). Time from publish to the last of
    the 100 arrivals, and the publishing call alone."""
    from bench.common import message_data
    from subscriptions.services import update_endpoint
    from webhookhub import publish

    standard = _tenant_with_endpoints([f"/hooks/standard/{n:03d}" for n in range(endpoints)], slug="bench-standard")
    mixed = _tenant_with_endpoints([f"/hooks/mixed/{n:03d}" for n in range(endpoints)], slug="bench-mixed", clear=False)
    for endpoint in list(mixed.endpoints.order_by("url"))[: endpoints // 2]:
        update_endpoint(endpoint=endpoint, payload_format="custom", payload_shape=SHAPE)
    _receiver("/reset", {"dedupe_by_path": True})
    platform.start_workers()
    times: dict[str, list[float]] = {"standard": [], "mixed": []}
    publish_ms: dict[str, list[float]] = {"standard": [], "mixed": []}
    for trial in range(2 * (trials + 1)):  # the first pair warms connections up and is not counted
        name, tenant = ("standard", standard) if trial % 2 == 0 else ("mixed", mixed)
        started = time.time()
        event = publish(tenant=tenant, type="message.received", data=message_data("fanout", trial))
        published = time.time()
        arrived = _wait(lambda event_id=event.id: _arrivals(event_id, endpoints), timeout=30)
        if arrived is None:
            raise RuntimeError("fan-out event not fully delivered within 30 s")
        if trial >= 2:
            times[name].append(round(1000 * (max(arrived) - started), 1))
            publish_ms[name].append(round(1000 * (published - started), 2))
    stats = _receiver("/stats")
    platform.stop_workers()
    median = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    publish_median = {name: sorted(values)[len(values) // 2] for name, values in publish_ms.items()}
    return {
        "endpoints": endpoints,
        "trials_ms": times,
        "median_ms": median,
        "publish_ms": publish_ms,
        "publish_median_ms": publish_median,
        "mixed_to_standard": round(median["mixed"] / median["standard"], 2),
        "duplicates": stats["duplicates"],
    }


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


def _pending(tenant, count: int, prefix: str = "evt_backlog") -> None:
    """``count`` pending deliveries to the tenant's one endpoint, written straight into the database."""
    from django.db import connection

    from bench.common import TEXT

    endpoint_id = tenant.endpoints.get().pk
    body = json.dumps({"type": "message.received", "data": {"text": TEXT}})[1:]  # the envelope after "{"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_event (id, tenant_id, type, data, body, occurred_at, created_at, source)"
            " SELECT %s || lpad(g::text, 9, '0'), %s, 'message.received', '{}'::jsonb,"
            " '{\"id\":\"' || %s || lpad(g::text, 9, '0') || '\",' || %s, now(), now(), 'app'"
            " FROM generate_series(1, %s) g",
            [prefix, tenant.pk, prefix, body, count],
        )
        cursor.execute(
            "INSERT INTO deliveries_delivery (event_id, endpoint_id, status, attempt_count, next_attempt_at,"
            " last_error, created_at) SELECT id, %s, 'pending', 0, now(), '', now() FROM events_event"
            " WHERE tenant_id = %s",
            [endpoint_id, tenant.pk],
        )


def backlog(platform: Platform, count: int) -> dict:
    """``count`` pending deliveries written straight into the database, then drained by fresh workers."""
    tenant = _tenant_with_endpoints(["/hooks/backlog"])
    _pending(tenant, count)
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


def _first_arrivals() -> dict[str, float]:
    arrivals: dict[str, float] = {}
    for arrived, event_id in _receiver("/events")["events"]:
        arrivals.setdefault(event_id, arrived)
    return arrivals


def _quiet_latencies(tenant, events: int = 10, rate: float = 2) -> list[float]:
    """Publish-to-arrival seconds of ``events`` published at ``rate``/s."""
    from bench.common import message_data
    from webhookhub import publish

    run, sent = uuid.uuid4().hex[:8], {}
    for i in range(events):
        sent[publish(tenant=tenant, type="message.received", data=message_data(run, i)).id] = time.time()
        time.sleep(1 / rate)
    _wait(lambda: all(event_id in _first_arrivals() for event_id in sent), 60, 0.2)
    arrivals = _first_arrivals()
    return [
        round(arrivals[event_id] - at, 3) if event_id in arrivals else float("inf") for event_id, at in sent.items()
    ]


def noisy(platform: Platform, backlog_size: int = 20_000) -> dict:
    """Tenant A has a 20,000-delivery backlog to an endpoint answering in 20 ms; tenant B publishes 10 events
    at 2/s: B's worst publish-to-arrival, beside A's backlog and alone."""
    results = {}
    for label in ("alone", "beside_backlog"):
        noisy_tenant = _tenant_with_endpoints(["/hooks/noisy"], slug="noisy")
        quiet_tenant = _tenant_with_endpoints(["/hooks/quiet"], slug="quiet", clear=False)
        if label == "beside_backlog":
            _pending(noisy_tenant, backlog_size, prefix="evt_noisy")
        _receiver("/reset", {"dedupe_by_path": True, "path_latency_ms": {"/hooks/noisy": 20}})
        platform.start_workers()
        if label == "beside_backlog":
            _wait(lambda: _receiver("/stats")["unique"] >= 500, 60, 0.2)  # A's backlog is draining
        latencies = _quiet_latencies(quiet_tenant)
        noisy_done = _receiver("/stats")["by_path"].get("/hooks/noisy", {}).get("unique", 0)
        platform.stop_workers()
        results[label] = {"worst_s": max(latencies), "latencies_s": latencies, "noisy_delivered_meanwhile": noisy_done}
    results["worst_ratio"] = round(results["beside_backlog"]["worst_s"] / max(results["alone"]["worst_s"], 1e-3), 2)
    return results


def slow(platform: Platform, events: int = 48) -> dict:
    """48 events at once to an endpoint answering in 3 s: how long until all arrived, and attempts without a request."""
    from bench.common import message_data
    from deliveries.models import Attempt
    from webhookhub import publish

    tenant = _tenant_with_endpoints(["/hooks/slow"])
    _receiver("/reset", {"dedupe_by_path": True, "path_latency_ms": {"/hooks/slow": 3000}})
    platform.start_workers()
    started = time.time()
    for i in range(events):
        publish(tenant=tenant, type="message.received", data=message_data("slow", i))
    done = _wait(lambda: _receiver("/stats")["unique"] >= events, 120, 0.2)
    elapsed = time.time() - started
    stats = _receiver("/stats")
    platform.stop_workers()
    return {
        "events": events,
        "all_arrived": bool(done),
        "seconds_until_all_arrived": round(elapsed, 1),
        "attempts": Attempt.objects.filter(delivery__endpoint__tenant=tenant).count(),
        "attempts_without_a_request": Attempt.objects.filter(
            delivery__endpoint__tenant=tenant, request_made=False
        ).count(),
        "duplicates": stats["duplicates"],
    }


def rate(platform: Platform, events: int = 50, limit: int = 5) -> dict:
    """rate_limit_per_s=5, two worker nodes: the most requests that arrived within any one second."""
    from bench.common import message_data
    from webhookhub import publish

    tenant = _tenant_with_endpoints(["/hooks/rate"], rate_limit_per_s=limit)
    _receiver("/reset", {"dedupe_by_path": True})
    platform.start_workers(nodes=2)
    for i in range(events):
        publish(tenant=tenant, type="message.received", data=message_data("rate", i))
    _wait(lambda: _receiver("/stats")["unique"] >= events, 60, 0.2)
    times = sorted(_first_arrivals().values())
    platform.stop_workers()
    busiest = max(sum(start <= other < start + 1 for other in times) for start in times) if times else 0
    return {
        "events": events,
        "arrived": len(times),
        "rate_limit_per_s": limit,
        "most_in_any_1s_window": busiest,
        "seconds": round(times[-1] - times[0], 2) if times else None,
    }


def down(platform: Platform, count: int = 10_000, down_seconds: float = 180) -> dict:
    """10,000 pending deliveries to a port that refuses connections for 3 minutes, then answers: attempts made
    while it was down, and how long until all arrived after it came back."""
    from django.db.models import Count

    from deliveries.models import Attempt, Delivery

    port = PORT + 1
    tenant = _tenant_with_endpoints([f"http://127.0.0.1:{port}/hooks/down"])
    _pending(tenant, count, prefix="evt_down")
    platform.start_workers()
    time.sleep(down_seconds)
    attempts_while_down = Attempt.objects.filter(delivery__endpoint__tenant=tenant).count()
    back = _start([HARNESS_PYTHON, str(HARNESS / "receiver.py"), "--port", str(port)], platform.run_dir / "rx-down.log")
    came_back = time.time()
    try:
        done = _wait(lambda: not Delivery.objects.filter(endpoint__tenant=tenant, status="pending").exists(), 600, 1.0)
        elapsed = time.time() - came_back
        statuses = dict(Delivery.objects.filter(endpoint__tenant=tenant).values_list("status").annotate(n=Count("id")))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:  # noqa: S310
            stats = json.loads(response.read())
    finally:
        _stop(back)
        platform.stop_workers()
    return {
        "deliveries": count,
        "down_seconds": down_seconds,
        "attempts_while_down": attempts_while_down,
        "all_settled": bool(done),
        "seconds_to_drain_after_back": round(elapsed, 1),
        "statuses": statuses,
        "delivered_unique": stats["unique"],
        "duplicates": stats["duplicates"],
    }


def batch(platform: Platform, events: int = 20_000, size: int = 100) -> dict:
    """``publish_many`` from one process, batches of ``size``, as fast as it goes while the workers
    deliver: events published per second (wall clock of the publishing loop), then every event
    delivered once."""
    from bench.common import message_data
    from webhookhub import publish_many

    tenant = _tenant_with_endpoints(["/hooks/batch"])
    _receiver("/reset", {})
    platform.start_workers()
    run = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    for first in range(0, events, size):
        items = [{"type": "message.received", "data": message_data(run, i)} for i in range(first, first + size)]
        publish_many(tenant=tenant, events=items)
    published_s = time.perf_counter() - started
    delivered = _wait(lambda: _receiver("/stats")["unique"] >= events, 240, 0.25)
    drained_s = time.perf_counter() - started
    stats = _receiver("/stats")
    platform.stop_workers()
    if not delivered:
        raise RuntimeError(f"batch: {stats['unique']} of {events} delivered within 240 s")
    return {
        "events": events,
        "batch_size": size,
        "published_per_s": round(events / published_s),
        "all_delivered_after_s": round(drained_s, 1),
        "delivered_unique": stats["unique"],
        "duplicates": stats["duplicates"],
    }


def _keyed_run(tenant, count: int, keys: int | None, rate: float | None) -> tuple[dict[str, float], dict[str, str]]:
    """Publish ``count`` events (over ``keys`` ordering keys, or none), at ``rate``/s or in batches of 100 as fast
    as it goes; (publish time, key) per event id."""
    from bench.common import message_data
    from webhookhub import publish, publish_many

    run = uuid.uuid4().hex[:8]
    sent: dict[str, float] = {}
    key_of: dict[str, str] = {}
    items = [
        {"type": "message.received", "data": message_data(run, i)}
        | ({"ordering_key": f"key_{i % keys:02d}"} if keys else {})
        for i in range(count)
    ]
    start = time.time()
    for first in range(0, count, 1 if rate else 100):
        if rate:
            time.sleep(max(0.0, start + first / rate - time.time()))
            results = [publish(tenant=tenant, **items[first])]
        else:
            results = [result.event for result in publish_many(tenant=tenant, events=items[first : first + 100])]
        now = time.time()
        for n, event in enumerate(results):
            sent[event.id] = now
            key_of[event.id] = items[first + n].get("ordering_key", "")
    return sent, key_of


def ordered(platform: Platform, count: int = 2000, keys: int = 20, rate: float = 100, seconds: float = 20) -> dict:
    """Ordering keys: 2,000 events over 20 keys to an ordered endpoint against the same unkeyed (throughput, from
    the first publish to the last arrival), then 100 events/s for 20 s of each (publish-to-arrival p99); and
    whether any key's events arrived out of publish order."""
    results: dict = {}
    for label, fields, n_keys in (("unkeyed", {}, None), ("keyed", {"ordered": True}, keys)):
        tenant = _tenant_with_endpoints(["/hooks/ordered"], **fields)
        _receiver("/reset", {})
        platform.start_workers()
        sent, key_of = _keyed_run(tenant, count, n_keys, None)
        _wait(lambda: _receiver("/stats")["unique"] >= count, 240, 0.1)
        arrivals = _first_arrivals()
        throughput = count / (max(arrivals.values()) - min(sent.values()))
        _receiver("/reset", {})
        paced, paced_keys = _keyed_run(tenant, int(rate * seconds), n_keys, rate)
        expected = len(paced)
        _wait(lambda expected=expected: _receiver("/stats")["unique"] >= expected, 60, 0.1)
        paced_arrivals = _first_arrivals()
        stats = _receiver("/stats")
        platform.stop_workers()
        latencies = sorted(1000 * (paced_arrivals[e] - at) for e, at in paced.items() if e in paced_arrivals)
        out_of_order = 0
        for sent_at, arrived in ((sent, arrivals), (paced, paced_arrivals)):
            last: dict[str, float] = {}
            for event_id in sorted(sent_at, key=sent_at.__getitem__):  # publish order
                key = {**key_of, **paced_keys}[event_id]
                if key and event_id in arrived:
                    out_of_order += arrived[event_id] < last.get(key, 0.0)
                    last[key] = arrived[event_id]
        results[label] = {
            "throughput_per_s": round(throughput, 1),
            "p50_ms_at_rate": round(latencies[len(latencies) // 2], 1),
            "p99_ms_at_rate": _p99(latencies),
            "arrived_out_of_publish_order": out_of_order,
            "lost": count + len(paced) - len(arrivals) - len(paced_arrivals),
            "duplicates": stats["duplicates"],
        }
    keyed, unkeyed = results["keyed"], results["unkeyed"]
    results["throughput_ratio"] = round(keyed["throughput_per_s"] / unkeyed["throughput_per_s"], 2)
    results["p99_ratio"] = round(keyed["p99_ms_at_rate"] / unkeyed["p99_ms_at_rate"], 2)
    return results


def _crowded_run(
    platform: Platform, *, adaptive: bool, max_in_flight: int, events: int, limit_open: int, service_s: float
) -> dict:
    """``events`` to one endpoint (retries after 1 s) at a receiver that answers 429 whenever more than
    ``limit_open`` requests are open and otherwise takes ``service_s``: until all succeeded."""
    from django.db.models import Max

    from bench.common import message_data
    from deliveries.models import Attempt, Delivery, DeliveryStatus
    from subscriptions.models import Endpoint
    from tests.support.load_receiver import LoadReceiver
    from webhookhub import publish_many

    receiver = LoadReceiver(lambda open_: (429, 0.0) if open_ > limit_open else (200, service_s)).start()
    try:
        tenant = _tenant_with_endpoints([receiver.url()], max_in_flight=max_in_flight)
        Endpoint.objects.filter(tenant=tenant).update(adaptive_concurrency=adaptive, retry_schedule=[1] * 20)
        run = uuid.uuid4().hex[:8]
        for first in range(0, events, 100):
            items = [{"type": "message.received", "data": message_data(run, i)} for i in range(first, first + 100)]
            publish_many(tenant=tenant, events=items)
        platform.start_workers()
        succeeded = Delivery.objects.filter(endpoint__tenant=tenant, status=DeliveryStatus.SUCCEEDED)
        done = _wait(lambda: succeeded.count() >= events, 300, 0.25)
        platform.stop_workers()
    finally:
        receiver.stop()
    arrivals = receiver.arrivals
    answered = [arrival for arrival in arrivals if arrival.status == 200]
    capacity = limit_open / service_s
    # While the backlog lasted: from the first request to the last first attempt (what follows is retries of
    # 429s, a second later each, with the receiver mostly idle).
    last_first = Attempt.objects.filter(delivery__endpoint__tenant=tenant, number=1).aggregate(at=Max("started_at"))
    backlog_end = last_first["at"].timestamp() if last_first["at"] else arrivals[-1].wall
    while_backlog = [arrival for arrival in answered if arrival.wall <= backlog_end + service_s]
    backlog_s = backlog_end - arrivals[0].wall
    total_s = answered[-1].at - arrivals[0].at if answered else 0.0
    return {
        "adaptive_concurrency": adaptive,
        "max_in_flight": max_in_flight,
        "all_delivered": bool(done),
        "requests": len(arrivals),
        "share_429": round(sum(arrival.status == 429 for arrival in arrivals) / max(1, len(arrivals)), 4),
        "receiver_capacity_per_s": capacity,
        "backlog_seconds": round(backlog_s, 2),
        "throughput_while_backlog_per_s": round(len(while_backlog) / backlog_s, 1) if backlog_s > 0 else None,
        "share_of_capacity_while_backlog": round(len(while_backlog) / backlog_s / capacity, 3)
        if backlog_s > 0
        else None,
        "seconds_until_all_succeeded": round(total_s, 2),
        "throughput_overall_per_s": round(len(answered) / total_s, 1) if total_s else None,
        "mean_open_at_receiver": round(sum(arrival.open for arrival in answered) / max(1, len(answered)), 2),
        "most_open_at_receiver": max((arrival.open for arrival in arrivals), default=0),
    }


def adaptive(platform: Platform, events: int = 2000, limit_open: int = 4) -> dict:
    """Adaptive concurrency: 2,000 events to an endpoint with ``max_in_flight`` 32 at a receiver that answers 429
    above 4 open requests, with adaptive concurrency and without; and, for reference, fixed at exactly 4 (an
    admin who guessed right: the most this worker gets from the receiver). At 20 ms per request (200/s at
    most) and at 50 ms (80/s), where the worker's own time between an answer and the next request weighs less."""
    results = {}
    for service_s in (0.02, 0.05):
        runs = {
            "adaptive_32": _crowded_run(
                platform, adaptive=True, max_in_flight=32, events=events, limit_open=limit_open, service_s=service_s
            ),
            "fixed_32": _crowded_run(
                platform, adaptive=False, max_in_flight=32, events=events, limit_open=limit_open, service_s=service_s
            ),
            "fixed_4": _crowded_run(
                platform,
                adaptive=False,
                max_in_flight=limit_open,
                events=events,
                limit_open=limit_open,
                service_s=service_s,
            ),
        }
        best = runs["fixed_4"]["throughput_while_backlog_per_s"] or 1
        runs["adaptive_32"]["share_of_fixed_4"] = round(runs["adaptive_32"]["throughput_while_backlog_per_s"] / best, 3)
        results[f"{round(service_s * 1000)}ms"] = runs
    return results


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
            elif name in SCHEDULING:
                results[name] = SCHEDULING[name](platform)
            print(json.dumps(results[name]), flush=True)
    finally:
        platform.stop()
    out = ROOT / "bench" / "results" / f"scenarios-{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}  logs: {run_dir}")


SCHEDULING = {
    "noisy": noisy,
    "slow": slow,
    "rate": rate,
    "down": down,
    "batch": batch,
    "ordered": ordered,
    "fanout_shapes": fanout_shapes,
    "adaptive": adaptive,
}

if __name__ == "__main__":
    main()
