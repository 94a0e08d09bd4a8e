#!/usr/bin/env python
"""Build the dashboard benchmark data set in PostgreSQL: 1,000,000 deliveries and 3,000,000 attempts.

One tenant ``bench`` with a tenant admin, 50 endpoints (a few with a bad profile, one
disabled), events of the catalog's types spread over the last 30 days and fanned out to
about three endpoints each. Every delivery is simulated against its endpoint's profile
(outages, transient errors, latency) with the app's retry schedule, so attempts, delivery
states, rollups and endpoint health agree with each other.

Rows go in with COPY; the rollups and health rows are computed with one SQL statement per
granularity (what ``deliveries.numbers.tallying.tally`` would produce), checked against a
Python ``tally()`` over a sample endpoint and day.

    .venv/bin/python bench/dashboard/generate.py [--database-url URL] [--seed N]

The database (default ``dashboard_bench`` on 127.0.0.1) is created if missing and migrated;
an existing bench data set in it is truncated first.
"""

import argparse
import base64
import bisect
import itertools
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/dashboard_bench"
TENANT_SLUG = "bench"
ADMIN_USERNAME = "bench-admin"
ADMIN_PASSWORD = "bench-admin-password"  # noqa: S105 (a local benchmark database)
DAYS = 30
ENDPOINTS = 50

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
NULL = "\\N"  # COPY's NULL


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the database -------------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    """A fresh database each run, so the schema is exactly what the migrations make today."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"refusing to drop and recreate {name!r}: use a database whose name contains 'bench'")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"created database {name}")


# --- ids and small helpers ----------------------------------------------------------------------


def ulid(prefix: str, epoch: float, rng: random.Random) -> str:
    value = int(epoch * 1000) << 80 | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return f"{prefix}_{''.join(reversed(chars))}"


def short_id(rng: random.Random, n: int = 10) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(sep=" ")


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def esc(text: str) -> str:
    """A value for COPY's text format."""
    return text.translate(_ESCAPES)


# --- what endpoints answer ----------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    status: int | None
    success: bool
    body: str
    headers: str  # JSON text
    error: str  # "" for success; {ip} is the endpoint's address


_JSON = '{"content-type": "application/json", "server": "nginx"}'
_HTML = '{"content-type": "text/html", "server": "nginx"}'
_PLAIN = '{"content-type": "text/plain; charset=utf-8", "server": "envoy"}'
KINDS = {
    "200": Kind(200, True, '{"received":true}', _JSON, ""),
    "200ok": Kind(200, True, "OK", _PLAIN, ""),
    "202": Kind(202, True, '{"status":"queued"}', _JSON, ""),
    "204": Kind(204, True, "", '{"server": "nginx"}', ""),
    "500": Kind(500, False, '{"error":"internal server error","request_id":"req_8f2c"}', _JSON, "HTTP 500"),
    "502": Kind(
        502,
        False,
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
        "</h1></center><hr><center>nginx</center></body></html>",
        _HTML,
        "HTTP 502",
    ),
    "503": Kind(
        503,
        False,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        '{"content-type": "text/plain", "retry-after": "30", "server": "envoy"}',
        "HTTP 503",
    ),
    "504": Kind(504, False, "<html><body><h1>504 Gateway Time-out</h1></body></html>", _HTML, "HTTP 504"),
    "429": Kind(
        429,
        False,
        '{"error":"rate_limited","message":"Too many requests, slow down."}',
        '{"content-type": "application/json", "retry-after": "20", "x-ratelimit-remaining": "0"}',
        "HTTP 429",
    ),
    "404": Kind(404, False, '{"detail":"Not found."}', _JSON, "HTTP 404"),
    "401": Kind(401, False, '{"detail":"Invalid signature."}', _JSON, "HTTP 401"),
    "read_timeout": Kind(None, False, "", "{}", "No response before the timeout."),
    "connect_timeout": Kind(None, False, "", "{}", "Connection to {ip} timed out."),
    "refused": Kind(None, False, "", "{}", "Could not connect to {ip}: connection refused or unreachable."),
    "tls": Kind(
        None,
        False,
        "",
        "{}",
        "TLS error: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)",
    ),
}
KIND_NAMES = list(KINDS)
KIND_INDEX = {name: i for i, name in enumerate(KIND_NAMES)}
SUCCESS_MIX = (("200", 80), ("200ok", 8), ("202", 8), ("204", 4))


@dataclass
class Profile:
    name: str
    weight: float  # share of the fan-out, relative
    latency_ms: float  # median of a successful answer
    sigma: float = 0.55
    transient: float = 0.004  # chance that an attempt outside an outage fails
    transient_kinds: tuple = (("502", 3), ("503", 3), ("500", 2), ("read_timeout", 1), ("429", 1))
    outage_rate: float = 0.05  # outages per day (times the calibrated multiplier for bad profiles)
    outage_hours: float = 0.5  # median duration
    outage_kinds: tuple = (("503", 4), ("502", 3), ("refused", 2), ("read_timeout", 1))
    bad: bool = False
    subscribes_all: bool = False


PROFILES = {
    "healthy": Profile("healthy", 1.0, 80, transient=0.01, outage_rate=0.15, outage_hours=0.75),
    "slow": Profile(
        "slow",
        1.0,
        650,
        sigma=0.7,
        transient=0.02,
        transient_kinds=(("read_timeout", 3), ("504", 2)),
        outage_rate=0.1,
        outage_hours=1.0,
    ),
    "flaky": Profile(
        "flaky", 4.0, 120, transient=0.3, outage_rate=0.5, outage_hours=4.0, bad=True, subscribes_all=True
    ),
    "throttled": Profile(
        "throttled",
        4.0,
        60,
        transient=0.3,
        transient_kinds=(("429", 9), ("503", 1)),
        outage_rate=0.3,
        outage_hours=3.0,
        outage_kinds=(("429", 3), ("503", 1)),
        bad=True,
        subscribes_all=True,
    ),
    "broken": Profile(
        "broken",
        4.0,
        90,
        transient=0.1,
        outage_rate=0.25,
        outage_hours=12.0,
        outage_kinds=(("500", 5), ("404", 1), ("tls", 1)),
        bad=True,
        subscribes_all=True,
    ),
    "worst": Profile(
        "worst",
        4.0,
        140,
        transient=0.25,
        outage_rate=0.4,
        outage_hours=8.0,
        outage_kinds=(("refused", 3), ("connect_timeout", 2), ("502", 2)),
        bad=True,
        subscribes_all=True,
    ),
    "disabled": Profile(
        "disabled",
        4.0,
        100,
        transient=0.1,
        outage_rate=0.3,
        outage_hours=4.0,
        outage_kinds=(("refused", 4), ("503", 1)),
        bad=True,
        subscribes_all=True,
    ),
}
# 50 endpoints: 40 healthy, 3 slow, 3 flaky, 1 throttled, 1 broken, 1 worst (down now), 1 disabled.
LAYOUT = ["healthy"] * 40 + ["slow"] * 3 + ["flaky"] * 3 + ["throttled", "broken", "worst", "disabled"]


@dataclass
class EndpointPlan:
    index: int
    profile: Profile
    event_types: list[str]
    ip: str
    masked_auth: str  # extra request-header JSON members, already masked
    pk: str = ""
    outages: list[tuple[float, float]] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    disabled_at: float | None = None
    down_from: float | None = None  # the last outage runs from here to now (worst) or to disabled_at

    def make_outages(self, rng: random.Random, start: float, now: float, multiplier: float) -> None:
        p = self.profile
        rate = p.outage_rate * (multiplier if p.bad else 1.0)
        outages = []
        t = start - 2 * 86400
        while True:
            t += rng.expovariate(rate / 86400) if rate > 0 else math.inf
            if t >= now:
                break
            length = min(rng.lognormvariate(math.log(p.outage_hours * 3600), 1.0), 3.5 * 86400)
            outages.append((t, t + length))
        if self.down_from is not None:
            end = self.disabled_at if self.disabled_at is not None else now + 86400
            outages = [o for o in outages if o[1] < self.down_from] + [(self.down_from, end)]
        self.outages = outages
        self.starts = [o[0] for o in outages]

    def down(self, t: float) -> bool:
        i = bisect.bisect_right(self.starts, t) - 1
        return i >= 0 and t < self.outages[i][1]


_MIXES: dict[tuple, tuple[list[str], list[float]]] = {}


def _pick(rng: random.Random, mix: tuple) -> str:
    if mix not in _MIXES:
        names, weights = zip(*mix, strict=True)
        _MIXES[mix] = (list(names), list(itertools.accumulate(weights)))
    names, cumulative = _MIXES[mix]
    return rng.choices(names, cum_weights=cumulative)[0]


def attempt_result(ep: EndpointPlan, t: float, rng: random.Random) -> tuple[int, int]:
    """(kind index, duration ms) of one attempt at time t."""
    p = ep.profile
    if ep.down(t):
        kind = _pick(rng, p.outage_kinds)
    elif rng.random() < p.transient:
        kind = _pick(rng, p.transient_kinds)
    else:
        kind = _pick(rng, SUCCESS_MIX)
    if kind == "read_timeout":
        duration = 15000 + int(rng.random() * 40)
    elif kind == "connect_timeout":
        duration = 5000 + int(rng.random() * 20)
    elif kind == "refused":
        duration = 1 + int(rng.random() * 30)
    elif kind == "tls":
        duration = 20 + int(rng.random() * 60)
    elif kind == "504":
        duration = int(rng.lognormvariate(math.log(9000), 0.3))
    elif KINDS[kind].success:
        duration = min(int(rng.lognormvariate(math.log(p.latency_ms), p.sigma)), 14_900)  # under the timeout
    else:
        duration = int(rng.lognormvariate(math.log(40), 0.8))
    return KIND_INDEX[kind], duration


# --- events -------------------------------------------------------------------------------------

TYPE_WEIGHTS = {
    "message.received": 26,
    "message.sent": 18,
    "message.updated": 20,
    "chat.opened": 5,
    "chat.closed": 4.5,
    "chat.pending": 1.5,
    "chat.reassigned": 2,
    "chat.transferred": 1,
    "chat.updated": 4,
    "contact.created": 4,
    "contact.updated": 6,
    "contact.opted_out": 1,
    "contact.opted_in": 0.6,
    "contact.double_opt_in": 0.5,
    "contact.double_opt_restricted": 0.08,
    "keyword.opted_in": 0.8,
    "campaign.sent": 0.04,
    "call.incoming": 2,
    "webhook.test": 0.01,
}
TEXTS = [
    "Hi! Is my order ready?",
    "Yes, ready for pickup.",
    "Can I change the delivery address to 12 Elm Street?",
    "Thanks, see you tomorrow at 10.",
    "STOP",
    "What are your opening hours on Sunday?",
    "Your appointment is confirmed for Friday 3:30 PM.",
    "Please call me back when you can.",
    "The package arrived damaged, can you help?",
    "Reply YES to confirm your booking.",
    "We have received your payment of $48.20. Thank you!",
    "Do you deliver to Springfield?",
]
NAMES = [
    "Ana Silva",
    "Sam Lee",
    "Kim Park",
    "Joao Costa",
    "Maria Garcia",
    "Liam Smith",
    "Noah Brown",
    "Emma Jones",
    "Olivia Davis",
    "Lucas Martin",
    "Mia Wilson",
    "Ethan Moore",
    "Sofia Rossi",
    "Yuki Tanaka",
    "Omar Haddad",
]
AGENTS = [
    ("usr_01jd3k5z0w", "Sam Lee"),
    ("usr_01jd3k4y9v", "Kim Park"),
    ("usr_01jd3m1a2b", "Rita Gomes"),
    ("usr_01jd3m3c4d", "Tom Weber"),
]
CONTACTS = 60_000  # phone numbers +1555 2000000 + 7 * i: "+15550000000" never occurs


def phone(i: int) -> str:
    return f"+1555{2000000 + 7 * i:07d}"


def event_data(kind: str, rng: random.Random, iso: str) -> dict:
    c = rng.randrange(CONTACTS)
    name = NAMES[c % len(NAMES)]
    contact = {"id": f"ct_{c:08d}", "name": name, "phone_number": phone(c)}
    family = kind.split(".")[0]
    if family == "message":
        outbound = kind != "message.received"
        data = {
            "id": f"msg_{short_id(rng)}",
            "text": rng.choice(TEXTS),
            "direction": "outbound" if outbound else "inbound",
            "status": {"message.received": "received", "message.sent": "sent"}.get(kind, "delivered"),
            "phone_number": phone(c),
            "chat_id": f"chat_{c:08d}",
            "contact": contact,
        }
        if kind == "message.updated":
            data["error_code"] = None
        return data
    if family == "chat":
        agent = AGENTS[c % len(AGENTS)]
        data = {
            "id": f"chat_{c:08d}",
            "status": {"chat.closed": "closed", "chat.pending": "pending"}.get(kind, "open"),
            "inbox_id": f"inb_{c % 5:04d}",
            "assignee": {"id": agent[0], "name": agent[1]},
            "contact": contact,
        }
        if kind == "chat.updated":
            data["labels"] = rng.sample(["order", "vip", "refund", "lead", "support"], 2)
        return data
    if family in ("contact", "keyword"):
        first, last = name.split(" ")
        data = {
            "id": f"ct_{c:08d}",
            "first_name": first,
            "last_name": last,
            "phone_number": phone(c),
            "email": f"{first.lower()}.{last.lower()}{c}@example.com",
            "groups": ["customers"],
            "source": rng.choice(["web_form", "import", "inbound_sms", "api"]),
            "keyword": None,
        }
        if kind == "contact.opted_out":
            data.update(opted_out_at=iso, keyword="STOP")
        elif kind == "contact.opted_in":
            data.update(opted_in_at=iso, keyword="START")
        elif kind == "keyword.opted_in":
            data.update(keyword="DEALS", list_id="lst_01jd3k2w7t")
        elif kind == "contact.updated":
            data["changed_fields"] = rng.sample(["email", "first_name", "groups", "phone_number"], 1)
        return data
    if kind == "campaign.sent":
        recipients = rng.randrange(200, 5000)
        failed = rng.randrange(0, 40)
        return {
            "id": f"cmp_{short_id(rng)}",
            "name": rng.choice(["Black Friday", "Spring sale", "Reminder"]),
            "recipients": recipients,
            "sent": recipients - failed,
            "failed": failed,
        }
    if kind == "call.incoming":
        return {"id": f"call_{short_id(rng)}", "from": phone(c), "to": "+15555550999", "contact": contact}
    return {"message": "This is a test event from webhookhub.", "example": {"phone_number": phone(c)}}


# --- the simulation -----------------------------------------------------------------------------


@dataclass
class Plan:
    created: list[float]  # per delivery
    endpoint: list[int]  # index into endpoints
    event: list[int]  # index into events
    events: list[tuple[float, str]]  # (created epoch, type)


def plan_deliveries(rng, endpoints, now, start, total) -> Plan:
    """Events in time order (busier by day) fanned out to 1-5 subscribed endpoints, ``total`` deliveries."""
    types, weights = zip(*TYPE_WEIGHTS.items(), strict=True)
    candidates = {}
    for name in types:
        subs = [ep for ep in endpoints if "*" in ep.event_types or name in ep.event_types]
        assert len(subs) > 6, (name, len(subs))  # a fan-out of 5 always finds 5 live endpoints
        candidates[name] = subs
    specs, planned = [], 0
    fanout_sizes, fanout_weights = (1, 2, 3, 4, 5), (10, 20, 40, 20, 10)
    while planned < total:
        n = min(rng.choices(fanout_sizes, fanout_weights)[0], total - planned)
        specs.append((rng.choices(types, weights)[0], n))
        planned += n
    times = []
    while len(times) < len(specs):
        t = start + rng.random() * (now - start - 1)
        hour = (t % 86400) / 3600
        if rng.random() < 0.55 + 0.45 * math.sin(math.pi * (hour - 6) / 16) ** 2 * (6 < hour < 22):
            times.append(t)
    times.sort()
    created, endpoint, event, events = [], [], [], []
    for t, (kind, n) in zip(times, specs, strict=True):
        live = [ep for ep in candidates[kind] if ep.disabled_at is None or t < ep.disabled_at]
        live_weights = [ep.profile.weight for ep in live]
        chosen: set[int] = set()
        while len(chosen) < n:
            chosen.add(rng.choices(live, live_weights)[0].index)
        events.append((t, kind))
        for index in sorted(chosen):
            created.append(t + 0.001 + rng.random() * 0.004)
            endpoint.append(index)
            event.append(len(events) - 1)
    return Plan(created, endpoint, event, events)


SCHEDULE: tuple[float, ...] = ()
JITTER = 0.2


def simulate(ep: EndpointPlan, created: float, now: float, rng: random.Random):
    """Attempts [(start, duration ms, kind)] and (status, next_attempt_at, completed_at)."""
    t = created + rng.lognormvariate(math.log(0.15), 0.8)
    attempts = []
    for i in range(len(SCHEDULE) + 1):
        if t > now:
            return attempts, ("pending", t, None)
        if ep.disabled_at is not None and t >= ep.disabled_at:
            return attempts, ("cancelled", None, t)
        kind, duration = attempt_result(ep, t, rng)
        attempts.append((t, duration, kind))
        end = t + duration / 1000
        if KINDS[KIND_NAMES[kind]].success:
            return attempts, ("succeeded", None, end)
        if i == len(SCHEDULE):
            return attempts, ("failed", None, end)
        t = end + SCHEDULE[i] * (1 + JITTER * (2 * rng.random() - 1))
    raise AssertionError


def calibrate(plan: Plan, endpoints, now, start, seed, target: float, sample: int = 40_000) -> float:
    """The outage multiplier of the bad profiles that gives ``target`` attempts per delivery (bisection)."""
    sample = min(sample, len(plan.created))
    picks = random.Random(seed + 1).sample(range(len(plan.created)), sample)

    def mean(multiplier: float) -> float:
        outage_rng = random.Random(seed + 3)  # the outages main() will draw for this multiplier
        for ep in endpoints:
            ep.make_outages(outage_rng, start, now, multiplier)
        rng = random.Random(seed + 2)
        attempts = sum(len(simulate(endpoints[plan.endpoint[i]], plan.created[i], now, rng)[0]) for i in picks)
        return attempts / sample

    low, high = 0.05, 40.0
    for _ in range(14):
        mid = math.sqrt(low * high)
        if mean(mid) < target:
            low = mid
        else:
            high = mid
    return math.sqrt(low * high)


# --- loading ------------------------------------------------------------------------------------


class Copier:
    """Buffers COPY text and sends it in ~1 MB writes."""

    def __init__(self, copy):
        self.copy, self.parts, self.size = copy, [], 0

    def row(self, line: str) -> None:
        self.parts.append(line)
        self.size += len(line)
        if self.size > 1 << 20:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.copy.write("".join(self.parts))
            self.parts, self.size = [], 0


def main() -> None:  # noqa: C901 (a script, read top to bottom)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--attempts", type=int, default=3_000_000)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--rebuild-stats",
        action="store_true",
        help="fill rollups and health with rebuild_stats() instead of SQL (slow)",
    )
    args = parser.parse_args()
    if args.attempts < args.deliveries:
        parser.error("--attempts must be at least --deliveries")

    started = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str, since: float) -> float:
        phases[name] = round(time.monotonic() - since, 1)
        log(f"{name}: {phases[name]} s")
        return time.monotonic()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("CONN_MAX_AGE", "0")
    recreate_database(args.database_url)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction

    from accounts.models import Membership, Role, Tenant
    from deliveries.models import Attempt, AttemptRollup, Delivery
    from events.models import Event
    from ground.conf import setting
    from subscriptions.models import AuthType, Endpoint, EndpointSecret

    global SCHEDULE, JITTER
    SCHEDULE = tuple(setting("RETRY_SCHEDULE"))
    JITTER = setting("RETRY_JITTER")
    user_agent = setting("USER_AGENT")

    mark = time.monotonic()
    call_command("migrate", verbosity=0)
    models = (Attempt, AttemptRollup, Delivery, health_model(), Event, Endpoint)
    tables = {m: m._meta.db_table for m in models}
    mark = phase("create database and migrate", mark)

    rng = random.Random(args.seed)
    now_dt = datetime.now(UTC)
    now = now_dt.timestamp()
    start = now - DAYS * 86400

    # -- tenant, admin, endpoints (ORM) --
    with transaction.atomic():
        tenant = Tenant.objects.create(slug=TENANT_SLUG, name="Bench Inc.")
        user = get_user_model().objects.create_user(
            ADMIN_USERNAME, "admin@bench.example.com", ADMIN_PASSWORD, is_staff=True
        )
        Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
        families = [
            ["message.received", "message.sent", "message.updated"],
            ["chat.opened", "chat.closed", "chat.pending", "chat.reassigned", "chat.transferred", "chat.updated"],
            [
                "contact.created",
                "contact.updated",
                "contact.opted_out",
                "contact.opted_in",
                "contact.double_opt_in",
                "contact.double_opt_restricted",
                "keyword.opted_in",
            ],
            ["campaign.sent", "call.incoming", "webhook.test"],
        ]
        plans: list[EndpointPlan] = []
        endpoint_rows = []
        for index, profile_name in enumerate(LAYOUT):
            profile = PROFILES[profile_name]
            n = index + 1
            if profile.subscribes_all or n % 7 == 0:
                types = ["*"]
            else:
                chosen = [families[0]] + [f for i, f in enumerate(families[1:]) if (n >> i) & 1]
                types = sorted({t for f in chosen for t in f})
            auth_type, auth, masked = AuthType.NONE, None, ""
            if n % 3 == 0:
                token = short_id(rng, 32)
                auth_type, auth = AuthType.BEARER, {"token": token}
                masked = f', "Authorization": "Bearer ****{token[-4:]}"'
            elif n % 3 == 1:
                key = short_id(rng, 24)
                auth_type, auth = AuthType.API_KEY, {"header": "X-Api-Key", "value": key}
                masked = f', "X-Api-Key": "****{key[-4:]}"'
            plan = EndpointPlan(index, profile, types, f"203.0.113.{n}", masked)
            if profile_name == "worst":
                plan.down_from = now - 40 * 3600  # down since yesterday, still down
            elif profile_name == "disabled":
                plan.down_from = now - 12 * 86400
                plan.disabled_at = plan.down_from + 5 * 86400 + 600
            plans.append(plan)
            path = ["webhooks/webhookhub", "api/v1/events", "hooks/incoming", "integrations/sms"][n % 4]
            endpoint_rows.append(
                Endpoint(
                    tenant=tenant,
                    name=f"hooks-{n:02d} {profile_name}",
                    url=f"https://hooks-{n}.example.com/{path}",
                    description=f"bench profile: {profile_name}",
                    event_types=types,
                    auth_type=auth_type,
                    auth=auth,
                    custom_headers={"X-Source": "webhookhub-bench"} if n % 5 == 0 else None,
                    created_by=user,
                )
            )
        Endpoint.objects.bulk_create(endpoint_rows)
        for plan, endpoint in zip(plans, endpoint_rows, strict=True):
            plan.pk = endpoint.pk
            if endpoint.custom_headers:
                plan.masked_auth = ', "X-Source": "****ench"' + plan.masked_auth
        EndpointSecret.objects.bulk_create(
            [
                EndpointSecret(endpoint=e, secret=f"whsec_{base64.b64encode(rng.randbytes(24)).decode()}")
                for e in endpoint_rows
            ]
        )
        Endpoint.objects.filter(tenant=tenant).update(created_at=now_dt - timedelta(days=DAYS + 10))
    mark = phase("tenant, admin and endpoints", mark)

    # -- plan and simulate --
    plan = plan_deliveries(rng, plans, now, start, args.deliveries)
    mark = phase("plan events and deliveries", mark)
    log(f"planned {len(plan.events):,} events and {len(plan.created):,} deliveries")
    multiplier = calibrate(plan, plans, now, start, args.seed, args.attempts / args.deliveries)
    mark = phase("calibrate", mark)
    log(f"outage multiplier of the bad profiles for {args.attempts / args.deliveries:.2f} attempts: {multiplier:.2f}")
    outage_rng = random.Random(args.seed + 3)
    for ep in plans:
        ep.make_outages(outage_rng, start, now, multiplier)
    sim_rng = random.Random(args.seed + 4)
    results = [simulate(plans[e], c, now, sim_rng) for e, c in zip(plan.endpoint, plan.created, strict=True)]
    total = sum(len(r[0]) for r in results)
    mark = phase("simulate", mark)
    log(f"simulated {total:,} attempts before the exact-count fix")

    # Exactly --attempts: a transient failure 5 s before some old one-attempt successes on healthy
    # endpoints, or drop the first failure of some old retried successes.
    diff = args.attempts - total
    old = now - 2 * 86400
    fix_rng = random.Random(args.seed + 5)
    if diff > 0:
        pool = [
            i
            for i, r in enumerate(results)
            if len(r[0]) == 1
            and r[1][0] == "succeeded"
            and plan.created[i] < old
            and not plans[plan.endpoint[i]].profile.bad
        ]
        for i in fix_rng.sample(pool, diff):
            attempts, state = results[i]
            t0, duration, kind = attempts[0]
            fail_kind = KIND_INDEX[_pick(fix_rng, PROFILES["healthy"].transient_kinds)]
            fail_duration = 15000 if KIND_NAMES[fail_kind] == "read_timeout" else 30 + fix_rng.randrange(60)
            t1 = t0 + fail_duration / 1000 + SCHEDULE[0] * (1 + JITTER * (2 * fix_rng.random() - 1))
            results[i] = (
                [(t0, fail_duration, fail_kind), (t1, duration, kind)],
                (state[0], None, t1 + duration / 1000),
            )
    elif diff < 0:
        pool = [i for i, r in enumerate(results) if len(r[0]) >= 2 and r[1][0] == "succeeded" and plan.created[i] < old]
        for i in fix_rng.sample(pool, -diff):
            attempts, state = results[i]
            results[i] = (attempts[1:], state)
    total = sum(len(r[0]) for r in results)
    assert total == args.attempts, total
    mark = phase("exact counts", mark)
    log(f"{'added a failed first attempt to' if diff > 0 else 'dropped the first attempt of'} {abs(diff):,} deliveries")

    # -- COPY --
    import psycopg

    statuses: dict[str, int] = {}
    with psycopg.connect(args.database_url) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers during the load
        conn.execute("SET synchronous_commit = off")
        with conn.cursor() as cur:
            event_ids = []
            columns = "id, tenant_id, type, data, body, occurred_at, created_at, idempotency_key, source"
            with cur.copy(f"COPY {tables[Event]} ({columns}) FROM STDIN") as copy:  # noqa: S608
                out = Copier(copy)
                for created, kind in plan.events:
                    occurred = created - rng.lognormvariate(math.log(0.02), 1.0)
                    event_id = ulid("evt", created, rng)
                    event_ids.append(event_id)
                    iso = datetime.fromtimestamp(occurred, UTC).isoformat().replace("+00:00", "Z")
                    data = event_data(kind, rng, iso)
                    body = json.dumps(
                        {"id": event_id, "type": kind, "timestamp": iso, "tenant_id": tenant.pk, "data": data},
                        separators=(",", ":"),
                        ensure_ascii=False,
                    )
                    api = rng.random() < 0.1
                    key = f"ik_{short_id(rng, 20)}" if api and rng.random() < 0.5 else "\\N"
                    out.row(
                        f"{event_id}\t{tenant.pk}\t{kind}\t{esc(json.dumps(data, ensure_ascii=False))}\t"
                        f"{esc(body)}\t{ts(occurred)}\t{ts(created)}\t{key}\t{'api' if api else 'app'}\n"
                    )
                out.flush()
            mark = phase("COPY events", mark)

            columns = (
                "id, event_id, endpoint_id, status, attempt_count, next_attempt_at, lease_until, "
                "last_status_code, last_error, created_at, completed_at"
            )
            with cur.copy(f"COPY {tables[Delivery]} ({columns}) FROM STDIN") as copy:  # noqa: S608
                out = Copier(copy)
                for i, (attempts, (status, next_at, completed)) in enumerate(results):
                    ep = plans[plan.endpoint[i]]
                    statuses[status] = statuses.get(status, 0) + 1
                    code, error = "\\N", ""
                    if attempts:
                        last = KINDS[KIND_NAMES[attempts[-1][2]]]
                        code = "\\N" if last.status is None else str(last.status)
                        error = last.error.format(ip=ep.ip)
                    if status == "cancelled":
                        error = f"Endpoint disabled: {disabled_reason(ep)}"
                    out.row(
                        f"{i + 1}\t{event_ids[plan.event[i]]}\t{ep.pk}\t{status}\t{len(attempts)}\t"
                        f"{ts(next_at) if next_at else NULL}\t{NULL}\t{code}\t{esc(error)}\t"
                        f"{ts(plan.created[i])}\t{ts(completed) if completed else NULL}\n"
                    )
                out.flush()
            mark = phase("COPY deliveries", mark)
            log(f"deliveries by status: {statuses}")

            columns = (
                "id, delivery_id, number, started_at, duration_ms, request_headers, status_code, "
                "response_headers, response_body, error, outcome"
            )
            # Every simulated attempt made its request (no stalled endpoint); newer schemas record that.
            request_made = "\tt" if has_field(Attempt, "request_made") else ""
            columns += ", request_made" if request_made else ""
            kind_cols = []
            for name in KIND_NAMES:
                k = KINDS[name]
                kind_cols.append(
                    (k.success, "\\N" if k.status is None else str(k.status), esc(k.headers), esc(k.body), k.error)
                )
            head = f'{{"content-type": "application/json", "user-agent": "{user_agent}", "webhook-id": "'
            attempt_id = 0
            with cur.copy(f"COPY {tables[Attempt]} ({columns}) FROM STDIN") as copy:  # noqa: S608
                out = Copier(copy)
                randbytes = rng.randbytes
                for i, (attempts, (status, _, _)) in enumerate(results):
                    ep = plans[plan.endpoint[i]]
                    event_id = event_ids[plan.event[i]]
                    last_number = len(attempts)
                    for number, (t, duration, kind) in enumerate(attempts, start=1):
                        attempt_id += 1
                        success, code, headers, body, error = kind_cols[kind]
                        if success:
                            outcome = "success"
                        elif number == last_number and status == "failed":
                            outcome = "fail"
                        else:
                            outcome = "retry"
                        signature = base64.b64encode(randbytes(32)).decode()
                        request = (
                            f'{head}{event_id}", "webhook-timestamp": "{int(t)}", '
                            f'"webhook-signature": "v1,{signature}"{ep.masked_auth}}}'
                        )
                        out.row(
                            f"{attempt_id}\t{i + 1}\t{number}\t{ts(t)}\t{duration}\t{request}\t{code}\t"
                            f"{headers}\t{body}\t{error.format(ip=ep.ip) if error else ''}\t{outcome}{request_made}\n"
                        )
                out.flush()
            mark = phase("COPY attempts", mark)
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{tables[Delivery]}', 'id'), %s)", [len(results)])
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{tables[Attempt]}', 'id'), %s)", [attempt_id])
            for ep in plans:
                if ep.disabled_at is not None:
                    cur.execute(
                        f"UPDATE {tables[Endpoint]} SET enabled = false, disabled_reason = %s, disabled_at = %s"  # noqa: S608
                        " WHERE id = %s",
                        [disabled_reason(ep), datetime.fromtimestamp(ep.disabled_at, UTC), ep.pk],
                    )
        conn.commit()
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"ANALYZE {tables[Event]}, {tables[Delivery]}, {tables[Attempt]}")
    mark = phase("ANALYZE", mark)

    # -- rollups and health --
    if args.rebuild_stats:
        from deliveries.numbers.maintenance import prune_rollups, rebuild_stats

        rebuild_stats()
        prune_rollups(now=now_dt, force=True)
        mark = phase("rollups and health (rebuild_stats)", mark)
    else:
        fill_stats(args.database_url, tables, now_dt)
        mark = phase("rollups and health (SQL)", mark)
    check_stats(plans, now_dt)
    mark = phase("check against tally()", mark)

    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    mark = phase("VACUUM ANALYZE", mark)
    total_s = round(time.monotonic() - started, 1)
    log(f"done in {total_s} s; log in as {ADMIN_USERNAME} / {ADMIN_PASSWORD}")
    summary = {
        "generated_at": now_dt.isoformat(),
        "seed": args.seed,
        "deliveries": len(results),
        "attempts": args.attempts,
        "events": len(plan.events),
        "statuses": statuses,
        "outage_multiplier": round(multiplier, 3),
        "phases_s": phases,
        "total_s": total_s,
    }
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"generate-{now_dt:%Y%m%d-%H%M%S}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def health_model():
    """Each endpoint's health record: in subscriptions now, in deliveries in older versions."""
    try:
        from subscriptions.models import EndpointHealth
    except ImportError:
        from deliveries.models import EndpointHealth
    return EndpointHealth


def has_field(model, name: str) -> bool:
    return any(f.name == name for f in model._meta.get_fields())


def disabled_reason(ep: EndpointPlan) -> str:
    since = datetime.fromtimestamp(ep.down_from, UTC)
    return f"No successful delivery since {since:%Y-%m-%d %H:%M} UTC (5 days or more of failures)."


# --- rollups and health in SQL ------------------------------------------------------------------


def fill_stats(url: str, tables: dict, now: datetime) -> None:
    """What ``rebuild_stats()`` then the five-minute pruning would leave, in one statement per table."""
    import psycopg

    from deliveries.models import LATENCY_BOUNDS_MS, LATENCY_COLUMNS, Attempt, AttemptRollup, Delivery, Granularity
    from deliveries.numbers.maintenance import FINE_ROLLUPS_KEPT
    from subscriptions.models import Endpoint

    Health = health_model()  # noqa: N806
    attempt, delivery, rollup, endpoint = tables[Attempt], tables[Delivery], tables[AttemptRollup], tables[Endpoint]
    # the clock is the health row's since the two were made one record; before, a column of the endpoint
    clock_in_health = has_field(Health, "failing_since")
    bounds = "ARRAY[" + ",".join(str(b) for b in LATENCY_BOUNDS_MS) + "]"
    # bisect_left(bounds, d) == the number of bounds < d == width_bucket(d - 1, bounds) for integers.
    latency = ", ".join(
        f"count(*) FILTER (WHERE a.status_code IS NOT NULL AND width_bucket(a.duration_ms - 1, {bounds}) = {i})"
        for i in range(len(LATENCY_COLUMNS))
    )
    counters = ", ".join(
        ["successes", "retries", "failures", "responses", "first_attempts", "first_successes", *LATENCY_COLUMNS]
    )
    # attempts that made no request move no streak
    only_requests = "WHERE a.request_made" if has_field(Attempt, "request_made") else ""
    with psycopg.connect(url) as conn:
        conn.execute("SET work_mem = '256MB'")
        conn.execute(f"DELETE FROM {rollup}")  # noqa: S608
        conn.execute(f"DELETE FROM {tables[Health]}")  # noqa: S608
        for granularity in Granularity.values:
            where = ""
            if granularity == Granularity.FIVE_MINUTES:
                where = "WHERE a.started_at >= %(cutoff)s"
            g = int(granularity)
            conn.execute(
                f"""INSERT INTO {rollup} (tenant_id, endpoint_id, granularity, bucket_start, {counters})
                SELECT e.tenant_id, d.endpoint_id, {g},
                       to_timestamp(floor(extract(epoch FROM a.started_at) / {g}) * {g}) AS bucket,
                       count(*) FILTER (WHERE a.outcome = 'success'), count(*) FILTER (WHERE a.outcome = 'retry'),
                       count(*) FILTER (WHERE a.outcome NOT IN ('success', 'retry')), count(a.status_code),
                       count(*) FILTER (WHERE a.number = 1),
                       count(*) FILTER (WHERE a.number = 1 AND a.outcome = 'success'),
                       {latency}
                FROM {attempt} a JOIN {delivery} d ON d.id = a.delivery_id JOIN {endpoint} e ON e.id = d.endpoint_id
                {where}
                GROUP BY 1, 2, 4""",  # noqa: S608
                {"cutoff": _fine_cutoff(now, FINE_ROLLUPS_KEPT)} if where else None,
            )
            # the pruning deletes five-minute buckets that *start* before now - 2 days
            conn.execute(
                f"DELETE FROM {rollup} WHERE granularity = 300 AND bucket_start < %s",  # noqa: S608
                [now - FINE_ROLLUPS_KEPT],
            )
        fill_totals(conn, tables, bounds)
        clock_column = ", failing_since" if clock_in_health else ""
        clock_value = ", CASE WHEN s.n > 0 THEN s.failing_since END" if clock_in_health else ""
        clock_update = (
            "SELECT count(*) FROM health"
            if clock_in_health
            else f"UPDATE {endpoint} e SET failing_since = s.failing_since FROM streak s"  # noqa: S608
            " WHERE s.endpoint_id = e.id AND s.n > 0"
        )
        conn.execute(
            f"""WITH a AS MATERIALIZED (
                    SELECT d.endpoint_id, a.started_at, a.number, a.status_code, a.error, a.outcome
                    FROM {attempt} a JOIN {delivery} d ON d.id = a.delivery_id {only_requests}),
                last_success AS (
                    SELECT DISTINCT ON (endpoint_id) endpoint_id, started_at, number FROM a
                    WHERE outcome = 'success' ORDER BY endpoint_id, started_at DESC, number DESC),
                last_attempt AS (
                    SELECT DISTINCT ON (endpoint_id) endpoint_id, started_at, status_code, error FROM a
                    ORDER BY endpoint_id, started_at DESC, number DESC),
                streak AS (
                    SELECT a.endpoint_id, min(a.started_at) FILTER (WHERE ls.started_at IS NULL
                               OR (a.started_at, a.number) > (ls.started_at, ls.number)) AS failing_since,
                           count(*) FILTER (WHERE ls.started_at IS NULL
                               OR (a.started_at, a.number) > (ls.started_at, ls.number)) AS n
                    FROM a LEFT JOIN last_success ls USING (endpoint_id) GROUP BY a.endpoint_id),
                health AS (
                    INSERT INTO {tables[Health]} (endpoint_id, last_attempt_at, last_status_code, last_error,
                                                  failed_in_a_row, last_success_at{clock_column})
                    SELECT la.endpoint_id, la.started_at, la.status_code, left(la.error, 500), s.n, ls.started_at
                           {clock_value}
                    FROM last_attempt la JOIN streak s USING (endpoint_id) LEFT JOIN last_success ls USING (endpoint_id)
                    RETURNING endpoint_id)
            {clock_update}"""  # noqa: S608
        )
        conn.commit()


def fill_totals(conn, tables: dict, bounds: str) -> None:
    """The /metrics totals the publishing statement and the recorder would have kept (one shard)."""
    from deliveries.models import LATENCY_COLUMNS, Attempt, AttemptTotal, Delivery, PublishTotal
    from events.models import Event

    attempt, delivery, event = tables[Attempt], tables[Delivery], tables[Event]
    attempt_total, publish_total = AttemptTotal._meta.db_table, PublishTotal._meta.db_table
    latency = ", ".join(
        f"count(*) FILTER (WHERE a.request_made AND width_bucket(a.duration_ms - 1, {bounds}) = {i})"
        for i in range(len(LATENCY_COLUMNS))
    )
    conn.execute(f"DELETE FROM {attempt_total}")  # noqa: S608
    conn.execute(f"DELETE FROM {publish_total}")  # noqa: S608
    conn.execute(
        f"""INSERT INTO {attempt_total} (tenant_id, shard, succeeded, retrying, failed, requests, duration_ms_sum,
                                         {", ".join(LATENCY_COLUMNS)})
        SELECT ev.tenant_id, 0, count(*) FILTER (WHERE a.outcome = 'success'),
               count(*) FILTER (WHERE a.outcome = 'retry'), count(*) FILTER (WHERE a.outcome = 'fail'),
               count(*) FILTER (WHERE a.request_made),
               coalesce(sum(a.duration_ms) FILTER (WHERE a.request_made), 0), {latency}
        FROM {attempt} a JOIN {delivery} d ON d.id = a.delivery_id JOIN {event} ev ON ev.id = d.event_id
        GROUP BY ev.tenant_id"""  # noqa: S608
    )
    conn.execute(
        f"""INSERT INTO {publish_total} (tenant_id, shard, events, deliveries)
        SELECT ev.tenant_id, 0, count(*), sum((SELECT count(*) FROM {delivery} d WHERE d.event_id = ev.id))
        FROM {event} ev GROUP BY ev.tenant_id"""  # noqa: S608
    )


def _fine_cutoff(now: datetime, kept: timedelta) -> datetime:
    """Attempts from the start of the first five-minute bucket that survives the pruning."""
    cutoff = int((now - kept).timestamp())
    return datetime.fromtimestamp(cutoff - cutoff % 300, UTC)


def check_stats(plans: list[EndpointPlan], now: datetime) -> None:
    """A Python ``tally()`` over one endpoint's attempts of one day must match the SQL rollups, and
    the app's streak logic over all its attempts must match its health row."""
    from deliveries.models import Attempt, AttemptOutcome, AttemptRollup, Granularity
    from deliveries.numbers.maintenance import FINE_ROLLUPS_KEPT
    from deliveries.numbers.tallying import tally

    EndpointHealth = health_model()  # noqa: N806

    flaky = next(ep for ep in plans if ep.profile.name == "flaky")
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for since, until in ((today - timedelta(days=3), today - timedelta(days=2)), (now - timedelta(hours=20), now)):
        attempts = list(
            Attempt.objects.filter(
                delivery__endpoint_id=flaky.pk, started_at__gte=since, started_at__lt=until
            ).select_related("delivery__endpoint")
        )
        expected = {}
        for (_endpoint, granularity, start), (_, counts) in tally(
            (a.delivery.endpoint.tenant_id, a) for a in attempts
        ).items():
            whole = start >= since and start + timedelta(seconds=granularity) <= until
            if granularity == Granularity.FIVE_MINUTES and start < now - FINE_ROLLUPS_KEPT:
                continue
            if whole:
                expected[(granularity, start)] = (
                    counts.successes,
                    counts.retries,
                    counts.failures,
                    counts.responses,
                    counts.first_attempts,
                    counts.first_successes,
                    *counts.latency,
                )
        actual = {}
        for row in AttemptRollup.objects.filter(endpoint_id=flaky.pk, bucket_start__gte=since, bucket_start__lt=until):
            if row.bucket_start + timedelta(seconds=row.granularity) <= until:
                actual[(row.granularity, row.bucket_start)] = (
                    row.successes,
                    row.retries,
                    row.failures,
                    row.responses,
                    row.first_attempts,
                    row.first_successes,
                    *row.latency_counts(),
                )
        if expected != actual:
            wrong = sorted(set(expected.items()) ^ set(actual.items()))[:5]
            raise SystemExit(f"rollups differ from tally() for {flaky.pk} {since}..{until}: {wrong}")
        log(
            f"check: {len(attempts):,} attempts of {flaky.pk} from {since:%Y-%m-%d %H:%M}: "
            f"{len(actual)} rollup rows equal tally()"
        )

    for ep in (flaky, next(ep for ep in plans if ep.profile.name == "worst")):
        attempts = Attempt.objects.filter(delivery__endpoint_id=ep.pk)
        if has_field(Attempt, "request_made"):
            attempts = attempts.filter(request_made=True)
        ordered = list(
            attempts.order_by("started_at", "number").only("started_at", "number", "status_code", "error", "outcome")
        )
        last = ordered[-1]
        successes = [i for i, a in enumerate(ordered) if a.outcome == AttemptOutcome.SUCCESS]
        streak = len(ordered) - successes[-1] - 1 if successes else len(ordered)
        last_success = ordered[successes[-1]].started_at if successes else None
        health = EndpointHealth.objects.get(endpoint_id=ep.pk)
        got = (
            health.last_attempt_at,
            health.last_status_code,
            health.last_error,
            health.failed_in_a_row,
            health.last_success_at,
        )
        want = (last.started_at, last.status_code, last.error[:500], streak, last_success)
        if got != want:
            raise SystemExit(f"health of {ep.pk} differs: {got} != {want}")
        log(f"check: health of {ep.pk} ({ep.profile.name}) equals the recorder's logic: streak {streak}")


if __name__ == "__main__":
    main()
