"""A private PostgreSQL cluster (``initdb`` + ``pg_ctl``) on a spare port, so a test can stop and restart it."""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support import tools
from tests.support.processes import free_port


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, or in Debian's versioned folder."""
    found = tools.find("pg_ctl")
    if found and tools.find("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


class PostgresServer:
    """PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user."""

    def __init__(self, log_dir: Path) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("initdb and pg_ctl were not found")
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="webhookhub-pg-"))
        self.data = self.root / "data"
        self.log_path = log_dir / f"postgres-{self.port}.log"
        self._as_user = (
            [tools.require("runuser", "runuser (PostgreSQL refuses to run as root)"), "-u", "postgres", "--"]
            if os.geteuid() == 0
            else []
        )
        if self._as_user:
            shutil.chown(self.root, "postgres")
            self.log_path.touch()
            shutil.chown(self.log_path, "postgres")

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            # No fsync: a test needs PostgreSQL to survive its own crash, not the machine's. Commits
            # stay synchronous, so a committed transaction survives ``stop -m immediate``.
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log_path), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: connections drop without a goodbye, as when a server dies."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)
