"""Real Celery worker / beat and gunicorn processes (and a private redis-server) for end-to-end tests."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.db import connection

from tests.support import tools

ROOT = Path(__file__).resolve().parents[2]

# Fast clocks so retries, leases and sweeps happen within a test.
E2E_WEBHOOKHUB = {
    "RETRY_SCHEDULE": [1, 1, 1],
    "SWEEP_INTERVAL_SECONDS": 0.5,
    "SEND_LEASE_SECONDS": 4.0,
}


def database_url() -> str:
    """The URL of the database the running test uses (the test database)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        WEBHOOKHUB_RETRY_SCHEDULE=",".join(str(s) for s in E2E_WEBHOOKHUB["RETRY_SCHEDULE"]),
        WEBHOOKHUB_SWEEP_INTERVAL_SECONDS=str(E2E_WEBHOOKHUB["SWEEP_INTERVAL_SECONDS"]),
        WEBHOOKHUB_SEND_LEASE_SECONDS=str(E2E_WEBHOOKHUB["SEND_LEASE_SECONDS"]),
        WEBHOOKHUB_ALLOW_PRIVATE_NETWORKS="127.0.0.0/8,::1/128",
        CONN_MAX_AGE="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


class Process:
    """A child in its own process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        """Wait for ``text`` in the output; on failure the process is stopped, then the test fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"{self.name} did not log {text!r}:\n{self.log()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def start_worker(env: dict[str, str], log_dir: Path, *, concurrency: int = 2, log_level: str = "INFO") -> Process:
    """A Celery worker node with ``concurrency`` pool processes, ready when it returns."""
    worker = Process(
        "worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "webhookhub",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(concurrency),
            "-l",
            log_level,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"e2e-{uuid.uuid4().hex[:8]}@%h",
        ],
        {**env, "LOG_LEVEL": log_level},
        log_dir,
    )
    worker.wait_for_log(" ready.", timeout=60)
    return worker


def start_beat(env: dict[str, str], log_dir: Path) -> Process:
    schedule = log_dir / f"beat-{uuid.uuid4().hex[:6]}"
    beat = Process(
        "beat",
        [sys.executable, "-m", "celery", "-A", "webhookhub", "beat", "-l", "INFO", "-s", str(schedule)],
        env,
        log_dir,
    )
    beat.wait_for_log("maxinterval", timeout=60)
    return beat


def start_web(env: dict[str, str], log_dir: Path) -> tuple[Process, int]:
    """A gunicorn server (one process) on a free port, once it answers /healthz: (process, port)."""
    port = free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    server = Process("web", [gunicorn, "webhookhub.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"], env, log_dir)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return server, port
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"the web server did not start:\n{server.log()[-2000:]}")
            time.sleep(0.2)


def purge_queue(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "webhookhub", "purge", "-f"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_redis(log_dir: Path, why: str) -> "RedisServer":
    """A started private redis-server; skipped locally without the binary, a failure in CI."""
    tools.require("redis-server", f"redis-server, for {why}")
    redis = RedisServer(log_dir)
    redis.start()
    return redis


class RedisServer:
    """A private redis-server, so a test can take the broker down and bring it back."""

    def __init__(self, log_dir: Path) -> None:
        self.binary = tools.find("redis-server")
        self.port = free_port()
        self.log_dir = log_dir
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = Process("redis", args, dict(os.environ), self.log_dir)
        self.process.wait_for_log("Ready to accept connections", timeout=20)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
