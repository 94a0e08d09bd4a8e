"""Where one delivery's database work goes, statement by statement, at low rates.

Each cycle is what one event to one endpoint costs when it arrives alone (25 events/s): the
publish, the owner's claim of the endpoint it was woken for, and the recording of a 200. The
request itself is left out (a canned answer), since this measures the database round trips;
the harness (``../shared/bench``) measures the whole path. Reported per cycle: statements and
round trips per step, this process's CPU and the PostgreSQL backend's CPU (read from
``/proc``, so PostgreSQL must run on this machine).

    DATABASE_URL=postgres://... python -m bench.cycle [--cycles 2000]
"""

import argparse
import cProfile
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from bench.common import message_data, setup_django

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class Statements:
    """Counts the statements (by their first words) each step sends."""

    def __init__(self) -> None:
        self.by_step: dict[str, Counter[str]] = {}
        self.step = ""

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        words = " ".join(sql.split()[:3])
        self.by_step.setdefault(self.step, Counter())[words[:60]] += 1
        return execute(sql, params, many, context)


@contextmanager
def measured(
    step: str, statements: Statements, totals: dict[str, list[float]], backend: int, pause: float
) -> Iterator[None]:
    statements.step = step
    cpu, pg = time.process_time(), backend_cpu_seconds(backend)
    yield
    row = totals.setdefault(step, [0.0, 0.0])
    row[0] += time.process_time() - cpu
    row[1] += backend_cpu_seconds(backend) - pg
    time.sleep(pause)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1, help="events per cycle, claimed and recorded together")
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds of idleness after each step, as between steps at low rates"
    )
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the cycles, timed in CPU seconds, here")
    args = parser.parse_args(argv)
    setup_django()

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Tenant
    from deliveries import http
    from deliveries.services.recording import decide_results, write
    from deliveries.services.sending import SendResult, claim, prepare
    from ground.conf import webhookhub_settings
    from subscriptions.services import create_endpoint
    from webhookhub import publish

    call_command("migrate", verbosity=0, interactive=False)
    tenant, _ = Tenant.objects.get_or_create(slug="bench-cycle", defaults={"name": "Cycle"})
    tenant.endpoints.all().delete()
    endpoint = create_endpoint(tenant=tenant, url="http://127.0.0.1:9/cycle", event_types=["message.received"]).endpoint
    config = webhookhub_settings()
    owner = f"cycle:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    run = uuid.uuid4().hex[:12]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    statements = Statements()
    totals: dict[str, list[float]] = {}
    profile = cProfile.Profile(time.process_time) if args.profile else None
    with connection.execute_wrapper(statements), profile or nullcontext():
        for i in range(args.cycles):
            with measured("publish", statements, totals, backend, args.pause):
                for n in range(args.batch):
                    publish(tenant=tenant, type="message.received", data=message_data(run, i * args.batch + n))
            with measured("claim", statements, totals, backend, args.pause):
                now = timezone.now()
                deliveries, _ = claim(
                    owner=owner, now=now, lease_seconds=30, capacity=8 * args.batch, endpoint_ids=[str(endpoint.pk)]
                )
                batch = prepare(deliveries, now)
            answer = http.HttpResult(200, body=b"ok", duration_ms=1)
            sent = [SendResult(delivery, timezone.now(), {}, answer) for delivery in batch.to_send]
            with measured("record", statements, totals, backend, args.pause):
                write(decide_results(sent, [], config))

    if profile is not None:
        profile.dump_stats(args.profile)
    cycles = args.cycles * args.batch
    print(f"{args.cycles} cycles of {args.batch}; per event, in ms of CPU (this process, PostgreSQL backend)")
    print("and statements sent (BEGIN and COMMIT not counted):")
    for step, (cpu, pg) in totals.items():
        counted = statements.by_step.get(step, Counter())
        print(f"  {step:8s} {cpu / cycles * 1000:6.2f} {pg / cycles * 1000:6.2f}  {sum(counted.values()) / cycles:.1f}")
        for words, n in counted.most_common():
            print(f"      {n / cycles:5.2f}  {words}")


if __name__ == "__main__":
    main()
