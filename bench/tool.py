"""Benchmark set-up and reset for webhookhub (run by the harness through the adapter).

python -m bench.tool setup --url http://127.0.0.1:18080/hooks/webhookhub [--endpoints 1]
python -m bench.tool reset
"""

import argparse
import os
import sys

import dj_database_url
import psycopg
from psycopg import sql


def ensure_database() -> None:
    """Create the database named by DATABASE_URL if it is missing (the bench role has CREATEDB)."""
    db = dj_database_url.parse(os.environ["DATABASE_URL"])
    params = {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"], "password": db["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))


def setup(url: str, endpoints: int) -> None:
    from django.core.management import call_command

    from accounts.models import Tenant
    from bench.common import TENANT_SLUG
    from subscriptions.models import Endpoint
    from subscriptions.services import create_endpoint

    call_command("migrate", verbosity=0, interactive=False)
    tenant, _ = Tenant.objects.get_or_create(slug=TENANT_SLUG, defaults={"name": "Benchmark"})
    Endpoint.objects.filter(tenant=tenant).delete()
    # BENCH_BEARER_TOKEN: the endpoints send it as Bearer auth (the harness's receiver accepts any).
    bearer = os.environ.get("BENCH_BEARER_TOKEN")
    auth = {"auth_type": "bearer", "auth": {"token": bearer}} if bearer else {}
    for n in range(endpoints):
        suffix = "" if endpoints == 1 else f"/{n:03d}"
        create_endpoint(tenant=tenant, url=f"{url}{suffix}", event_types=["message.received"], **auth)
    print(f"bench tenant with {endpoints} endpoint(s) -> {url}" + (" (Bearer auth)" if bearer else ""))


def reset() -> None:
    from django.db import connection

    from deliveries.models import Attempt, AttemptRollup, Delivery, EndpointSchedule, Payload
    from events.models import Event, TriggerRequest
    from subscriptions.models import EndpointHealth
    from webhookhub.celery import app

    models = (Attempt, Delivery, Payload, AttemptRollup, EndpointHealth, EndpointSchedule, TriggerRequest, Event)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models))
    purged = app.control.purge()
    print(f"truncated; purged {purged} queued tasks")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    setup_parser = sub.add_parser("setup")
    setup_parser.add_argument("--url", required=True)
    setup_parser.add_argument("--endpoints", type=int, default=1)
    sub.add_parser("reset")
    args = parser.parse_args(argv)

    if args.command == "setup" and os.environ.get("DATABASE_URL", "").startswith("postgres"):
        ensure_database()
    from bench.common import setup_django

    setup_django()
    if args.command == "setup":
        setup(args.url, args.endpoints)
    else:
        reset()


if __name__ == "__main__":
    sys.exit(main())
