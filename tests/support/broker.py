"""A real Celery broker (kombu's filesystem transport) in a temporary folder, for reading what was enqueued.

Keeps tests from ringing the shared ``var/broker`` doorbell of a developer's running worker.
"""

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhookhub.celery import app


@dataclass(frozen=True)
class BrokerQueue:
    path: Path

    def messages(self) -> list[tuple[str, list[Any]]]:
        """(task name, positional args) of every message in the queue, oldest first."""
        found = []
        for file in sorted(self.path.iterdir()):
            message = json.loads(file.read_text())
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            found.append((message["headers"]["task"], args))
        return found


def _reset_pools() -> None:
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def isolated_broker(folder: Path) -> Iterator[BrokerQueue]:
    queue, control = folder / "queue", folder / "control"
    queue.mkdir(parents=True)
    control.mkdir(parents=True)
    saved = (app.conf.broker_url, app.conf.broker_write_url, app.conf.broker_transport_options)
    app.conf.broker_url = "filesystem://"
    app.conf.broker_write_url = None
    app.conf.broker_transport_options = {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "control_folder": str(control),
        "store_processed": False,
    }
    _reset_pools()
    try:
        yield BrokerQueue(queue)
    finally:
        app.conf.broker_url, app.conf.broker_write_url, app.conf.broker_transport_options = saved
        _reset_pools()
