#!/usr/bin/env python
"""Time every dashboard page on the benchmark data set (see generate.py) and count its SQL queries.

Logs in as the bench tenant's admin with Django's test ``Client`` (DEBUG off), requests
each page once to warm up (counting its queries), then N times more, timing the whole
request: middleware, session, queries and template. Prints a Markdown table with median
and max milliseconds and the number of queries per page, and writes everything (with the
slowest queries of each page) to ``bench/dashboard/results/<timestamp>.json``.

    .venv/bin/python bench/dashboard/measure.py [--database-url URL] [-n 10] [--only NAME] [--explain]

``--explain`` runs EXPLAIN (ANALYZE, BUFFERS) on the slow queries of every page over the
budget and writes the plans to ``results/<timestamp>-explain.txt``.
"""

import argparse
import html
import json
import os
import platform
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/dashboard_bench"
BUDGET_MS = 300.0
ABSENT_PHONE = "+15550000000"  # generate.py never uses it
TABLES = (
    "events_event",
    "deliveries_delivery",
    "deliveries_attempt",
    "deliveries_attemptrollup",
    "subscriptions_endpointhealth",
    "subscriptions_endpoint",
)


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def build_pages(client, now: datetime) -> list[dict]:
    """Every page to time: {name, method, url, data?}; finds its examples in the data set."""
    from accounts.models import Tenant
    from deliveries.models import Delivery
    from events.models import Event
    from subscriptions.models import Endpoint

    tenant = Tenant.objects.get(slug="bench")
    endpoints = list(Endpoint.objects.filter(tenant=tenant).order_by("name"))
    healthy = next(e for e in endpoints if e.description.endswith(": healthy"))
    worst = next(e for e in endpoints if e.description.endswith(": worst"))
    busy = (
        Delivery.objects.filter(endpoint=worst, attempt_count=8, created_at__lt=now - timedelta(days=3))
        .order_by("-created_at")
        .values_list("pk", flat=True)
        .first()
    )
    old_event = (
        Delivery.objects.filter(created_at__lt=now - timedelta(days=20))
        .order_by("-created_at")
        .values_list("event_id", flat=True)
        .first()
    )
    recent_bodies = Event.objects.filter(tenant=tenant, created_at__gte=now - timedelta(hours=3)).order_by(
        "-created_at"
    )[:200]
    phone = next(
        m.group(1)
        for body in recent_bodies.values_list("body", flat=True)
        if (m := re.search(r'"(\+1555\d{7})"', body))
    )
    range_start = (now - timedelta(days=10)).replace(hour=9, minute=0, second=0, microsecond=0)

    log = "/dashboard/deliveries/"
    first = client.get(log)
    match = re.search(r'<a href="([^"]*)" id="older"', first.content.decode())
    older = html.unescape(match.group(1)) if match else "?before=0"

    pages = [{"name": f"overview {w}", "url": f"/dashboard/?window={w}"} for w in ("1h", "24h", "7d", "30d")]
    pages += [
        {"name": "log", "url": log},
        {"name": "log page 2 (older)", "url": log + older},
        {"name": "log endpoint=healthy", "url": f"{log}?endpoint={healthy.pk}"},
        {"name": "log event_type=message.received", "url": f"{log}?event_type=message.received"},
        {"name": "log event_type=campaign.sent (rare)", "url": f"{log}?event_type=campaign.sent"},
        {"name": "log status=failed", "url": f"{log}?status=failed"},
        {"name": "log status=pending", "url": f"{log}?status=pending"},
        {"name": "log status=retrying", "url": f"{log}?status=retrying"},
        {"name": "log status=cancelled", "url": f"{log}?status=cancelled"},
        {
            "name": "log time range (6 h, 10 days ago)",
            "url": f"{log}?since={_minute(range_start)}&until={_minute(range_start + timedelta(hours=6))}",
        },
        {"name": "log event id", "url": f"{log}?event={old_event}"},
        {"name": "log search phone (present)", "url": f"{log}?q={phone.replace('+', '%2B')}"},
        {"name": "log search phone (absent)", "url": f"{log}?q={ABSENT_PHONE.replace('+', '%2B')}"},
        {"name": "delivery detail (8 attempts)", "url": f"/dashboard/deliveries/{busy}/"},
        # beyond the list: the search box with an id, and a payload search over a chosen range
        {"name": "[extra] log search q=event id", "url": f"{log}?q={old_event}"},
        {
            "name": "[extra] log search phone (absent) since 7d",
            "url": f"{log}?q={ABSENT_PHONE.replace('+', '%2B')}&since={_minute(now - timedelta(days=7))}",
        },
        {
            "name": "[extra] log search phone (absent) since 30d",
            "url": f"{log}?q={ABSENT_PHONE.replace('+', '%2B')}&since={_minute(now - timedelta(days=30))}",
        },
    ]
    for label, endpoint in (("healthy", healthy), ("worst", worst)):
        for w in ("1h", "24h", "7d", "30d"):
            pages.append({"name": f"endpoint {label} {w}", "url": f"/dashboard/endpoints/{endpoint.pk}/?window={w}"})
    replay = f"/dashboard/endpoints/{worst.pk}/replay/"
    pages += [
        {
            "name": "replay preview worst failed 24h",
            "method": "post",
            "url": replay,
            "data": {"which": "failed", "since": _minute(now - timedelta(days=1)), "until": _minute(now)},
            "expect": 'id="replay-preview"',
        },
        {
            "name": "replay preview worst all 30d",
            "method": "post",
            "url": replay,
            "data": {"which": "all", "since": _minute(now - timedelta(days=30)), "until": _minute(now)},
            "expect": 'id="replay-preview"',
        },
    ]
    return pages


def request(client, page: dict):
    if page.get("method") == "post":
        return client.post(page["url"], page["data"])
    return client.get(page["url"])


def measure(client, page: dict, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = request(client, page)  # the warm-up, with the queries counted
    # read now: the next request's request_started signal empties the connection's query log
    queries = [{"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"]} for q in captured.captured_queries]
    body = response.content.decode()
    if response.status_code != 200 or (page.get("expect") and page["expect"] not in body):
        raise SystemExit(f"{page['name']}: HTTP {response.status_code} from {page['url']}\n{body[:2000]}")
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        request(client, page)
        timings.append((time.perf_counter() - started) * 1000)
    rows = body.count('class="delivery-link"')
    return {
        **{k: v for k, v in page.items() if k != "expect"},
        "median_ms": round(statistics.median(timings), 1),
        "max_ms": round(max(timings), 1),
        "min_ms": round(min(timings), 1),
        "timings_ms": [round(t, 1) for t in timings],
        "queries": len(queries),
        "query_ms": round(sum(q["ms"] for q in queries), 1),
        "log_rows": rows if page["name"].startswith("log") else None,
        "slowest_queries": sorted(queries, key=lambda q: -q["ms"])[:3],
    }


def dataset() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples::bigint, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
            [list(TABLES)],
        )
        rows = {name: {"rows_estimate": rows, "total_bytes": size} for name, rows, size in cursor.fetchall()}
        cursor.execute("SELECT pg_database_size(current_database()), version()")
        size, version = cursor.fetchone()
    return {"tables": rows, "database_bytes": size, "postgres": version}


def code_version() -> dict:
    """The commit measured, and which files differed from it (another change may be in progress)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {"commit": git("rev-parse", "HEAD"), "modified_files": changed}


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("-n", "--repeat", type=int, default=10, help="timed requests per page (after 1 warm-up)")
    parser.add_argument("--only", default="", help="only pages whose name contains this")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slow queries of slow pages")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    assert not settings.DEBUG
    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username="bench-admin"))
    now = datetime.now(UTC)

    data = dataset()
    print("Data set (pg_class.reltuples estimates):")
    for name in TABLES:
        info = data["tables"].get(name, {})
        print(f"  {name:28} {info.get('rows_estimate', 0):>12,} rows  {info.get('total_bytes', 0) / 2**20:8.0f} MB")
    print(f"  database {data['database_bytes'] / 2**20:,.0f} MB")

    pages = [p for p in build_pages(client, now) if args.only in p["name"]]
    load_before = os.getloadavg()
    results = []
    for page in pages:
        result = measure(client, page, args.repeat)
        results.append(result)
        flag = " SLOW" if max(result["median_ms"], result["max_ms"]) > BUDGET_MS else ""
        print(
            f"  {result['name']:40} median {result['median_ms']:7.1f} ms  max {result['max_ms']:7.1f} ms  "
            f"{result['queries']:2} queries{flag}",
            flush=True,
        )

    print("\n| page | median ms | max ms | queries |\n|---|---:|---:|---:|")
    for r in results:
        over = " ⚠" if max(r["median_ms"], r["max_ms"]) > BUDGET_MS else ""
        print(f"| {r['name']} | {r['median_ms']:.1f}{over} | {r['max_ms']:.1f} | {r['queries']} |")

    stamp = now.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(__file__).resolve().parent / "results"
    out_dir.mkdir(exist_ok=True)
    if args.explain:
        plans = []
        for r in results:
            if max(r["median_ms"], r["max_ms"]) <= BUDGET_MS:
                continue
            for q in r["slowest_queries"]:
                if q["ms"] >= 20:
                    plans.append(f"=== {r['name']} ({q['ms']} ms in the warm-up)\n{q['sql']}\n\n{explain(q['sql'])}\n")
        path = out_dir / f"{stamp}-explain.txt"
        path.write_text("\n".join(plans) or "no page over the budget\n")
        print(f"\nplans: {path}")
    report = {
        "measured_at": now.isoformat(),
        "repeat": args.repeat,
        "budget_ms": BUDGET_MS,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        "code": code_version(),
        "dataset": data,
        "pages": results,
    }
    path = out_dir / f"{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
