"""Application code publishing at a steady rate, as a separate process: ``python -m tests.support.publisher``.

Each ``publish()`` runs as a web request would: stale connections are dropped first
(Django does this at every request start). One JSON line per try goes to ``--out``:
``{"id": ..., "at": ...}`` when ``publish()`` returned (the event is promised), or
``{"error": ..., "at": ...}`` when it raised (nothing was promised).
"""

import argparse
import json
import os
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant", required=True, help="tenant slug")
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")
    django.setup()
    from django.db import DatabaseError, close_old_connections

    from accounts.models import Tenant
    from deliveries.services import doorbell
    from webhookhub import publish

    tenant = Tenant.objects.get(slug=args.tenant)
    start = time.monotonic()
    count = int(args.rate * args.seconds)
    with open(args.out, "a", buffering=1) as out:
        for number in range(count):
            time.sleep(max(0.0, start + number / args.rate - time.monotonic()))
            close_old_connections()
            try:
                event = publish(tenant=tenant, type="message.received", data={"n": number})
            except DatabaseError as exc:
                out.write(json.dumps({"error": str(exc).strip()[:200], "at": time.time()}) + "\n")
                continue
            out.write(json.dumps({"id": event.id, "at": time.time()}) + "\n")
    doorbell.flush()


if __name__ == "__main__":
    main()
