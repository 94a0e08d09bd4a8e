"""Read what was enqueued on the real, configured broker (Redis in CI, the filesystem transport locally).

``captured_queue`` empties Celery's default queue first, so a test sees only its own messages.
"""

import queue as stdlib_queue
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from deliveries.services import doorbell
from webhookhub.celery import app


class BrokerQueue:
    def __init__(self, name: str) -> None:
        self.name = name

    def messages(self, wait: float = 0.3) -> list[tuple[str, list[Any]]]:
        """(task name, positional args) of every message now in the queue, consuming them."""
        doorbell.flush()  # what was rung on commit has reached the broker
        found = []
        with app.connection_for_read() as connection:
            simple = connection.SimpleQueue(self.name, no_ack=True)
            try:
                while True:
                    try:
                        message = simple.get(block=True, timeout=wait)
                    except stdlib_queue.Empty:
                        break
                    args, _kwargs, _embed = message.decode()
                    found.append((message.headers["task"], args))
            finally:
                simple.close()
        return found

    def purge(self) -> None:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_declare(self.name, durable=True, auto_delete=False)
            connection.default_channel.queue_purge(self.name)


@contextmanager
def captured_queue() -> Iterator[BrokerQueue]:
    queue = BrokerQueue(app.conf.task_default_queue)
    queue.purge()
    yield queue
    queue.purge()
