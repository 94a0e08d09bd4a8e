#!/usr/bin/env python
"""Operations on the dashboard's data set (bench/dashboard/generate.py: 1M deliveries, 3M attempts):

1. ``GET /metrics``: time a scrape (tenant labels off and on), N times after a warm-up.
2. Retention: ``manage.py purge --older-than 1`` (about 29 of the set's 30 days; its default
   pacing, ``--busy 50``, unless ``--busy`` says otherwise), while a separate process
   publishes 100 events/s to the bench tenant (open loop: each publish is due at start + i/rate).
   Publish latency is measured for ``--baseline`` seconds without the purge, then during it;
   the purge's rate is rows (events + deliveries + attempts) per second.

    .venv/bin/python bench/operations/measure.py [--database-url URL] [--older-than 1] [-n 20]

The purge deletes most of the data set: run ``generate.py`` again before another run.
Writes ``bench/operations/results/<timestamp>.json`` and prints a summary.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/dashboard_bench"
TOKEN = "bench-metrics-token-0123456789"  # noqa: S105 (a local benchmark)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies_ms: list[float]) -> dict:
    return {
        "publishes": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 0.50), 2),
        "p99_ms": round(percentile(latencies_ms, 0.99), 2),
        "max_ms": round(max(latencies_ms), 2),
    }


# --- the publisher (a child process: its own interpreter and database connection) ----------------


def publisher(rate: float, seconds: float) -> None:
    """Publish ``rate`` events/s for ``seconds``; print one line per publish: due time, latency ms."""
    from deliveries.services.publishing import publish

    interval = 1.0 / rate
    start = time.monotonic()
    n = 0
    while (due := start + n * interval) < start + seconds:
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        began = time.monotonic()
        publish(tenant="bench", type="message.received", data={"text": f"bench {n}", "from": "+15550000001"})
        print(f"{time.time():.4f} {(time.monotonic() - began) * 1000:.3f}", flush=True)
        n += 1


# --- measurements --------------------------------------------------------------------------------


def time_scrapes(n: int, by_tenant: bool) -> dict:
    from django.test import Client, override_settings

    from ground.conf import webhookhub_settings

    client = Client(HTTP_HOST="localhost")
    overrides = {**webhookhub_settings(), "METRICS_TOKEN": TOKEN, "METRICS_TENANT_LABELS": by_tenant}
    timings = []
    with override_settings(WEBHOOKHUB=overrides):
        for i in range(n + 1):
            began = time.perf_counter()
            response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
            elapsed = (time.perf_counter() - began) * 1000
            assert response.status_code == 200, response.status_code
            if i:  # the first warms up
                timings.append(elapsed)
    return {
        "by_tenant": by_tenant,
        "median_ms": round(statistics.median(timings), 1),
        "max_ms": round(max(timings), 1),
        "bytes": len(response.content),
        "body": response.content.decode(),
    }


def counts() -> dict:
    from deliveries.models import Attempt, Delivery
    from events.models import Event

    return {
        "events": Event.objects.count(),
        "deliveries": Delivery.objects.count(),
        "attempts": Attempt.objects.count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--older-than", type=int, default=1, help="purge events older than this many days")
    parser.add_argument("--busy", type=int, default=50, help="manage.py purge --busy (its default: 50)")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s the publisher publishes")
    parser.add_argument("--baseline", type=float, default=30.0, help="seconds of publishing without the purge")
    parser.add_argument("-n", type=int, default=20, help="timed scrapes per variant")
    parser.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    if args.publisher:
        publisher(args.rate, args.seconds)
        return

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    before_counts = counts()
    print(f"data set: {before_counts}")
    scrapes = [time_scrapes(args.n, by_tenant) for by_tenant in (False, True)]
    for scrape in scrapes:
        print(
            f"GET /metrics (tenant labels {'on' if scrape['by_tenant'] else 'off'}): "
            f"median {scrape['median_ms']} ms, max {scrape['max_ms']} ms, {scrape['bytes']} bytes"
        )

    budget = args.baseline + 3600  # the publisher is stopped when the purge ends
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    timings = results / "publisher.log"  # a file, not a pipe: a full pipe would stall the publisher
    with timings.open("w") as log:
        child = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--publisher",
                "--database-url",
                args.database_url,
                "--rate",
                str(args.rate),
                "--seconds",
                str(budget),
            ],
            stdout=log,
            cwd=ROOT,
        )
    time.sleep(args.baseline)
    purge_started = time.time()
    output = StringIO()
    call_command("purge", "--older-than", str(args.older_than), "--busy", str(args.busy), stdout=output)
    purge_ended = time.time()
    deleted = re.search(r"Deleted (\d+) event\(s\), (\d+) delivery\(ies\), (\d+) attempt\(s\)", output.getvalue())
    events, deliveries, attempts = (int(n) for n in deleted.groups())
    time.sleep(2)
    child.terminate()
    child.wait(timeout=30)
    lines = [tuple(map(float, line.split())) for line in timings.read_text().splitlines() if line.strip()]
    timings.unlink()
    warm = lines[0][0] + 5  # the first seconds warm the publisher's caches
    baseline = [ms for at, ms in lines if warm <= at < purge_started]
    during = [ms for at, ms in lines if purge_started <= at < purge_ended]
    seconds = purge_ended - purge_started
    rows = events + deliveries + attempts
    result = {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "data_set_before": before_counts,
        "data_set_after": counts(),
        "metrics_scrape": [{k: v for k, v in s.items() if k != "body"} for s in scrapes],
        "purge": {
            "older_than_days": args.older_than,
            "busy_percent": args.busy,
            "events": events,
            "deliveries": deliveries,
            "attempts": attempts,
            "seconds": round(seconds, 1),
            "rows_per_s": round(rows / seconds),
        },
        "publish_at_rate": args.rate,
        "publish_without_purge": summary(baseline),
        "publish_during_purge": summary(during),
    }
    result["p99_ratio"] = round(result["publish_during_purge"]["p99_ms"] / result["publish_without_purge"]["p99_ms"], 2)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    (results / f"{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    (results / f"{stamp}-metrics.txt").write_text(scrapes[0]["body"])
    print(json.dumps({k: v for k, v in result.items() if k not in {"machine", "measured_at"}}, indent=2))


if __name__ == "__main__":
    main()
