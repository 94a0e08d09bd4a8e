"""Fault injection with real processes: what production does to the platform, and that it heals by itself.

A private PostgreSQL cluster (``initdb``/``pg_ctl`` on a spare port) and a private
``redis-server`` let each test stop and restart them. A worker (prefork, ``-c 2``) and
beat run with production settings (connection reuse on, the default 30 s send lease and
2 s sweep interval); a separate process calls ``publish()`` at a steady rate, as the web
processes do. For every scenario: each event ``publish()`` returned arrives, repeats carry
the same webhook-id and bytes, delivery resumes within the bound, and no process was restarted.
"""

import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.support import processes, tools
from tests.support.bounds import bound
from tests.support.postgres import PostgresServer, postgres_bin_dir
from tests.support.processes import ROOT
from tests.support.receiver import Received, Receiver, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LOG_DIR = ARTIFACTS / "fault-logs"
SWEEP_INTERVAL = 2.0  # the production default
SEND_LEASE = 30.0  # the production default
RECORD_RETRY_MAX = 2.0  # the recorder's longest wait between two tries while the database is down
# After the database or broker is back: the recorder's next try, then the next sweep at the latest.
RESUME_BOUND = bound(RECORD_RETRY_MAX, SWEEP_INTERVAL)


@pytest.fixture(scope="module")
def postgres():
    """One private cluster for the module, migrated once; each test uses its own tenant."""
    bin_dir = postgres_bin_dir()
    tools.require(None, "PostgreSQL's initdb and pg_ctl, for the fault suite", found=str(bin_dir) if bin_dir else None)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(LOG_DIR)
    server.init()
    server.start()
    server.create_database("webhookhub_faults")
    env = _process_env(server, broker_url="redis://127.0.0.1:1/0")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=180
    )
    yield server
    server.destroy()


def _process_env(server: PostgresServer, *, broker_url: str, **overrides: str) -> dict[str, str]:
    """Production-like settings: connections reused (CONN_MAX_AGE, CELERY_DB_REUSE_MAX), default lease and sweep."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("WEBHOOKHUB_", "CONN_MAX_AGE"))}
    env.update(
        DATABASE_URL=server.url("webhookhub_faults"),
        CELERY_BROKER_URL=broker_url,
        WEBHOOKHUB_ALLOW_PRIVATE_NETWORKS="127.0.0.0/8",
        PYTHONUNBUFFERED="1",
    )
    for name in ("WEBHOOKHUB_ENCRYPTION_KEY", "WEBHOOKHUB_DATA_DIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(overrides)
    return env


@dataclass(frozen=True)
class Published:
    id: str
    at: float


class Faults:
    """One scenario's world: a private broker, a receiver, a tenant with one endpoint, worker and beat."""

    def __init__(self, postgres: PostgresServer, endpoint_args: tuple[str, ...] = (), **env_overrides: str) -> None:
        self.postgres = postgres
        self.redis = processes.private_redis(LOG_DIR, "the fault suite")
        self.env = _process_env(postgres, broker_url=self.redis.url, **env_overrides)
        self.receiver = Receiver().start()
        self.slug = f"faults-{uuid.uuid4().hex[:8]}"
        self._manage("create_tenant", self.slug)
        self._manage(
            "add_endpoint",
            "--tenant",
            self.slug,
            "--url",
            self.receiver.url(),
            "--event-type",
            "message.received",
            *endpoint_args,
        )
        self.worker = processes.start_worker(self.env, LOG_DIR)
        self.beat = processes.start_beat(self.env, LOG_DIR)
        self._publishers: list[tuple[processes.Process, Path]] = []

    def _manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def publish(self, *, rate: float, seconds: float) -> processes.Process:
        out = LOG_DIR / f"published-{uuid.uuid4().hex[:6]}.jsonl"
        args = [
            sys.executable,
            "-m",
            "tests.support.publisher",
            "--tenant",
            self.slug,
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--out",
            str(out),
        ]
        publisher = processes.Process("publisher", args, self.env, LOG_DIR)
        self._publishers.append((publisher, out))
        return publisher

    def promised(self) -> list[Published]:
        """Every event a ``publish()`` call returned (calls that raised promised nothing)."""
        rows = [
            json.loads(line) for _, out in self._publishers if out.exists() for line in out.read_text().splitlines()
        ]
        return [Published(row["id"], row["at"]) for row in rows if "id" in row]

    def raised(self) -> int:
        """How many ``publish()`` calls raised. One that raised as the database crashed may still have
        committed: its event is delivered though nobody was promised it (the caller would try again)."""
        return sum(
            "error" in json.loads(line)
            for _, out in self._publishers
            if out.exists()
            for line in out.read_text().splitlines()
        )

    def wait_for_publishers(self, timeout: float = 120) -> None:
        for publisher, _ in self._publishers:
            publisher.popen.wait(timeout=timeout)
            assert publisher.popen.returncode == 0, publisher.log()[-3000:]

    def wait_for_all(self, events: list[Published], timeout: float = 90) -> dict[str, list[Received]]:
        """Block until every event arrived at least once; returns the requests by webhook-id."""
        wanted = {event.id for event in events}
        deadline = time.monotonic() + timeout
        while True:
            arrived = self.arrivals()
            missing = wanted - arrived.keys()
            if not missing:
                return arrived
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(missing)} of {len(wanted)} promised events never arrived: {self.deliveries_of(missing)}"
                )
            time.sleep(0.2)

    def arrivals(self) -> dict[str, list[Received]]:
        by_id: dict[str, list[Received]] = {}
        for request in list(self.receiver.requests):
            by_id.setdefault(request.headers["webhook-id"], []).append(request)
        return by_id

    def deliveries_of(self, event_ids: set[str]) -> list[tuple]:
        """What the database says of these events' deliveries (for failure messages)."""
        with psycopg.connect(self.postgres.url("webhookhub_faults")) as conn:
            return conn.execute(
                "SELECT e.id, d.status, d.attempt_count, d.next_attempt_at, d.lease_until, d.last_error "
                "FROM events_event e LEFT JOIN deliveries_delivery d ON d.event_id = e.id WHERE e.id = ANY(%s)",
                [sorted(event_ids)],
            ).fetchall()

    def delivery_states(self) -> Counter:
        with psycopg.connect(self.postgres.url("webhookhub_faults")) as conn:
            rows = conn.execute(
                "SELECT d.status, count(*) FROM deliveries_delivery d JOIN events_event e ON e.id = d.event_id "
                "JOIN accounts_tenant t ON t.id = e.tenant_id WHERE t.slug = %s GROUP BY d.status",
                [self.slug],
            ).fetchall()
        return Counter(dict(rows))

    def assert_still_running(self) -> None:
        assert self.worker.popen.poll() is None, "the worker exited"
        assert self.beat.popen.poll() is None, "beat exited"

    def close(self) -> None:
        for publisher, _ in self._publishers:
            publisher.stop()
        self.beat.stop()
        self.worker.stop()
        self.receiver.stop()
        self.redis.stop()
        # Nothing of this scenario may be sent by the next one's worker.
        with psycopg.connect(self.postgres.url("webhookhub_faults"), autocommit=True) as conn:
            conn.execute("UPDATE deliveries_delivery SET status = 'cancelled' WHERE status = 'pending'")


@pytest.fixture
def faults(postgres, request):
    marker = request.node.get_closest_marker("fault_env")
    endpoint = request.node.get_closest_marker("fault_endpoint")  # add_endpoint options
    world = Faults(postgres, endpoint.args if endpoint else (), **(marker.kwargs if marker else {}))
    yield world
    world.close()


def assert_same_bytes_on_every_repeat(arrived: dict[str, list[Received]]) -> None:
    for event_id, requests in arrived.items():
        assert len({request.body for request in requests}) == 1, f"{event_id} was sent with different bodies"
        assert all(json.loads(request.body)["id"] == event_id for request in requests)


def measured(scenario: str, **figures: float) -> None:
    """Keep what a scenario measured (test-artifacts/fault-logs/measured.jsonl), for the README's figures."""
    with (LOG_DIR / "measured.jsonl").open("a") as out:
        out.write(json.dumps({"scenario": scenario, **{k: round(v, 2) for k, v in figures.items()}}) + "\n")


def assert_resumed(faults: Faults, scenario: str, events: list[Published], back_at: float) -> None:
    """Delivery resumed within the bound: the first request after recovery, and every event published since."""
    after = [request.at for request in faults.receiver.requests if request.at >= back_at]
    assert after, "nothing arrived after recovery"
    arrived = faults.arrivals()
    since = [min(r.at for r in arrived[event.id]) - event.at for event in events if event.at >= back_at]
    settled = [min(r.at for r in arrived[event.id]) - event.at for event in events if event.at >= back_at + 2]
    measured(
        scenario,
        first_arrival_after_recovery_s=min(after) - back_at,
        worst_latency_since_s=max(since),
        median_latency_from_2s_after_s=statistics.median(settled),
    )
    assert min(after) - back_at <= RESUME_BOUND, f"first delivery {min(after) - back_at:.1f} s after recovery"
    # Not only the sweeper: publishers' doorbells and the workers' consumers work again.
    assert statistics.median(settled) < 0.5, f"median latency {statistics.median(settled):.2f} s after recovery"
    late = {
        event.id: round(min(r.at for r in arrived[event.id]) - event.at, 2)
        for event in events
        if event.at >= back_at and min(r.at for r in arrived[event.id]) - event.at > RESUME_BOUND
    }
    assert not late, f"events published after recovery arrived late: {late}"


@pytest.mark.parametrize("rate", [1, 50], ids=["light", "busy"])
def test_postgres_restart_under_traffic(faults, postgres, rate):
    faults.publish(rate=rate, seconds=30)
    time.sleep(6)

    postgres.stop("immediate")  # a crash: every connection breaks without a goodbye
    time.sleep(10)
    postgres.start()
    back_at = time.time()

    faults.wait_for_publishers()
    events = faults.promised()
    assert sum(event.at > back_at for event in events) >= 10 * rate, "too few events published after the restart"
    arrived = faults.wait_for_all(events)
    assert_same_bytes_on_every_repeat(arrived)
    assert_resumed(faults, f"postgres restart at {rate}/s", events, back_at)
    faults.assert_still_running()
    # The database agrees with the receiver: nothing left pending, nothing failed.
    states = _wait_until_settled(faults)
    assert states == Counter({"succeeded": states["succeeded"]}) and states["succeeded"] >= len(events)


@pytest.mark.parametrize("rate", [1, 50], ids=["light", "busy"])
def test_redis_killed_and_restarted_empty(faults, rate):
    faults.publish(rate=rate, seconds=30)
    time.sleep(6)

    faults.redis.process.kill(signal.SIGKILL)
    time.sleep(10)
    faults.redis.start()  # same port, empty: every queued message is gone
    back_at = time.time()

    faults.wait_for_publishers()
    events = faults.promised()
    assert len(events) == 30 * rate, "publishing must not fail while the broker is down"
    arrived = faults.wait_for_all(events)
    assert_same_bytes_on_every_repeat(arrived)
    assert_resumed(faults, f"redis killed and restarted empty at {rate}/s", events, back_at)
    faults.assert_still_running()
    assert _wait_until_settled(faults) == Counter({"succeeded": 30 * rate})


@pytest.mark.fault_endpoint("--fixed-concurrency")  # all five open at the kill, not the adaptive start's two
def test_worker_sigkilled_mid_send(faults):
    sent_once: Counter = Counter()

    def hang_first_time(received: Received) -> Reply:
        sent_once[received.headers["webhook-id"]] += 1
        return Reply(delay=20) if sent_once[received.headers["webhook-id"]] == 1 else Reply()

    faults.receiver.responder = hang_first_time
    faults.publish(rate=5, seconds=1)
    faults.receiver.wait_for(5, timeout=30)  # all five are being sent, and hang

    faults.worker.kill(signal.SIGKILL)
    killed_at = time.time()
    faults.worker = processes.start_worker(faults.env, LOG_DIR)

    faults.wait_for_publishers()
    events = faults.promised()
    assert len(events) == 5
    arrived = faults.wait_for_all(events)
    deadline = time.monotonic() + 60
    while sum(len(requests) for requests in faults.arrivals().values()) < 10 and time.monotonic() < deadline:
        time.sleep(0.2)
    arrived = faults.arrivals()
    assert all(len(arrived[event.id]) == 2 for event in events), {k: len(v) for k, v in arrived.items()}
    resent_after = max(requests[1].at for requests in arrived.values()) - killed_at
    measured("worker SIGKILLed mid-send", last_resent_after_kill_s=resent_after)
    # Their leases (renewed until the kill) run out, then the next sweep finds them.
    assert resent_after <= bound(SEND_LEASE, SWEEP_INTERVAL), f"sent again {resent_after:.1f} s after the kill"
    assert_same_bytes_on_every_repeat(arrived)
    assert _wait_until_settled(faults) == Counter({"succeeded": 5})


@pytest.mark.fault_env(WEBHOOKHUB_RETRY_SCHEDULE="3,3,3,3")
def test_retries_go_out_while_beat_is_dead(faults):
    # 400 (retried on the schedule) rather than 5xx: five 5xx in a row would open the endpoint's circuit.
    faults.receiver.responder = lambda received: Reply(status=400) if _attempt(faults, received) <= 2 else Reply()
    faults.beat.kill(signal.SIGKILL)
    time.sleep(3)

    faults.publish(rate=5, seconds=1)  # the last doorbell rings here; after this only due retries are left

    faults.wait_for_publishers()
    events = faults.promised()
    arrived = faults.wait_for_all(events)
    deadline = time.monotonic() + 60
    while min(len(faults.arrivals().get(event.id, [])) for event in events) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    arrived = faults.arrivals()
    tries = {event.id: len(arrived.get(event.id, [])) for event in events}
    assert all(count == 3 for count in tries.values()), f"tries per event (expected 3 each): {tries}"
    gaps = [later.at - earlier.at for event in events for earlier, later in itertools.pairwise(arrived[event.id])]
    measured("retries with beat dead", longest_gap_between_tries_s=max(gaps))
    for event in events:
        first, second, third = arrived[event.id]
        # Due 3 s (+20 % jitter) after each failure; sent within two sweep intervals of that.
        for earlier, later in ((first, second), (second, third)):
            assert later.at - earlier.at <= bound(3 * 1.2, SWEEP_INTERVAL), later.at - earlier.at
    assert faults.beat.popen.poll() is not None  # beat stayed dead throughout
    assert _wait_until_settled(faults) == Counter({"succeeded": len(events)})


def _attempt(faults: Faults, received: Received) -> int:
    """Which try of its event this request is (1 for the first)."""
    return sum(r.headers["webhook-id"] == received.headers["webhook-id"] for r in faults.receiver.requests)


def _wait_until_settled(faults: Faults, timeout: float = 30) -> Counter:
    deadline = time.monotonic() + timeout
    while True:
        states = faults.delivery_states()
        if not states["pending"] or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


@pytest.mark.fault_env(WEBHOOKHUB_RETRY_SCHEDULE="60,60,60")
def test_a_database_outage_while_failing_requests_are_open_costs_no_retry(faults, postgres):
    faults.receiver.default = Reply(status=500, delay=3)  # answered while the database is down
    faults.publish(rate=20, seconds=0.2)  # four events: below the circuit breaker's five failures
    faults.receiver.wait_for(4, timeout=30)  # all four requests are open

    postgres.stop("immediate")
    time.sleep(15)  # the recorder holds the four failures and tries again and again meanwhile
    postgres.start()

    faults.wait_for_publishers()
    events = faults.promised()
    assert len(events) == 4
    recorded = _wait_for(lambda: _recorded(faults, events), until=lambda rows: all(row[1] for row in rows))
    # Each failure is one attempt, numbered 1; the delivery waits for its second try, as after any failure.
    assert [(status, count, attempts) for _, count, status, attempts, _ in recorded] == [("pending", 1, [1])] * 4
    now = time.time()
    assert all(now < retry_at < now + 72 for *_, retry_at in recorded), [row[4] - now for row in recorded]
    assert sorted(faults.arrivals()) == sorted(event.id for event in events)
    assert all(len(requests) == 1 for requests in faults.arrivals().values())
    faults.assert_still_running()
    measured("database down 15 s while 4 failing requests were open", attempts=sum(row[1] for row in recorded))


@pytest.mark.fault_env(WEBHOOKHUB_RETRY_SCHEDULE="1,1,1,1,1,1,1,1")
def test_postgres_stopped_while_redis_and_beat_die_and_a_fifth_of_requests_fail(faults, postgres):
    answers: list[int] = []

    def fail_every_fifth(received: Received) -> Reply:
        answers.append(500 if len(answers) % 5 == 4 else 200)  # under the receiver's lock: one at a time
        return Reply(status=answers[-1])

    faults.receiver.responder = fail_every_fifth
    faults.publish(rate=50, seconds=40)
    time.sleep(6)

    faults.redis.process.kill(signal.SIGKILL)
    postgres.stop("immediate")
    faults.beat.kill(signal.SIGKILL)
    time.sleep(20)
    postgres.start()
    faults.redis.start()
    faults.beat = processes.start_beat(faults.env, LOG_DIR)
    back_at = time.time()

    faults.wait_for_publishers()
    events = faults.promised()
    assert sum(event.at > back_at for event in events) >= 100, "too few events published after recovery"
    faults.wait_for_all(events)
    states = _wait_until_settled(faults, timeout=60)
    assert set(states) == {"succeeded"}, states
    # Every promised event, and at most the publishes that raised as the database crashed (committed unacknowledged).
    assert len(events) <= states["succeeded"] <= len(events) + faults.raised(), (states, len(events))
    arrived = faults.arrivals()
    assert_same_bytes_on_every_repeat(arrived)
    assert answers.count(500) >= len(answers) // 5 > 0
    # The database counts exactly the requests the receiver saw, each attempt numbered once.
    recorded = _recorded(faults, events)
    mismatched = {
        event_id: (count, attempts, len(arrived[event_id]))
        for event_id, count, _, attempts, _ in recorded
        if not (count == len(arrived[event_id]) and attempts == list(range(1, count + 1)))
    }
    assert not mismatched, f"(attempt count, attempt numbers, requests) that disagree: {mismatched}"
    faults.assert_still_running()
    measured(
        "postgres stopped, redis and beat killed, a fifth failing",
        events=len(events),
        requests=len(answers),
        answered_500=answers.count(500),
        events_sent_more_than_once=sum(len(requests) > 1 for requests in arrived.values()),
    )


def _recorded(faults: Faults, events: list[Published]) -> list[tuple]:
    """Per event: (id, attempt count, status, attempt numbers, next attempt as a Unix time or None), by id."""
    with psycopg.connect(faults.postgres.url("webhookhub_faults")) as conn:
        rows = conn.execute(
            "SELECT d.event_id, d.attempt_count, d.status, "
            "ARRAY(SELECT a.number FROM deliveries_attempt a WHERE a.delivery_id = d.id ORDER BY a.number), "
            "extract(epoch FROM d.next_attempt_at) "
            "FROM deliveries_delivery d WHERE d.event_id = ANY(%s) ORDER BY d.event_id",
            [[event.id for event in events]],
        ).fetchall()
    return [
        (event_id, count, status, list(numbers), retry_at and float(retry_at))
        for event_id, count, status, numbers, retry_at in rows
    ]


def _wait_for(read, *, until, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
        except psycopg.OperationalError:  # the database is still starting
            value = None
        if value is not None and until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {value}")
        time.sleep(0.2)
