from pathlib import Path

import pytest

from tests.support import processes

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def e2e(settings, transactional_db, tmp_path):
    """Real processes against the test database: returns a small controller; stops them afterwards."""
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, **processes.E2E_WEBHOOKHUB}
    log_dir = ARTIFACTS / "e2e-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    controller = _Controller(log_dir)
    yield controller
    controller.stop_all()


class _Controller:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.env = processes.process_env()
        self._started: list[processes.Process] = []
        self._redis: list[processes.RedisServer] = []

    def use_private_broker(self) -> processes.RedisServer:
        redis = processes.private_redis(self.log_dir, "the broker-outage test")
        self._redis.append(redis)
        self.env = processes.process_env(CELERY_BROKER_URL=redis.url)
        return redis

    def start_worker(self, *, concurrency: int = 2, log_level: str = "INFO") -> processes.Process:
        worker = processes.start_worker(self.env, self.log_dir, concurrency=concurrency, log_level=log_level)
        self._started.append(worker)
        return worker

    def start_beat(self) -> processes.Process:
        beat = processes.start_beat(self.env, self.log_dir)
        self._started.append(beat)
        return beat

    def start_all(self) -> None:
        processes.purge_queue(self.env)
        self.start_worker()
        self.start_beat()

    def logs(self) -> str:
        """The output of every process started so far."""
        return "\n".join(process.log() for process in self._started)

    def stop_all(self) -> None:
        for process in reversed(self._started):
            process.stop()
        for redis in self._redis:
            redis.stop()
