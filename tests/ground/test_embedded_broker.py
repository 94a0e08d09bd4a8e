"""The embedded default's broker (``ground.embedded_broker``): messages appear whole, and a file that
cannot be read never reaches, let alone stops, the consumer."""

import os
import time
import uuid
from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection, Exchange, Queue

from ground import embedded_broker
from ground.embedded_broker import UNREADABLE_GRACE_SECONDS


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "queue").mkdir()
    (tmp_path / "control").mkdir()
    return tmp_path


@pytest.fixture
def connection(folder: Path):
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
    with Connection("filesystem://", transport="ground.embedded_broker:Transport", transport_options=options) as c:
        yield c


def _queue(connection: Connection) -> Queue:
    """A queue of the test's own (kombu keeps declared bindings per process, whatever the folder)."""
    name = f"doorbells-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name), routing_key=name)
    queue(connection.default_channel).declare()
    return queue


def _publish(connection: Connection, queue: Queue, body: dict) -> None:
    connection.Producer().publish(body, exchange=queue.name, routing_key=queue.name, serializer="json")


def _get(connection: Connection, queue: Queue):
    message = queue(connection.default_channel).get(no_ack=True)
    return None if message is None else message.payload


def test_messages_go_through_in_order(connection):
    queue = _queue(connection)
    for n in range(3):
        _publish(connection, queue, {"n": n})

    assert [_get(connection, queue) for _ in range(4)] == [{"n": 0}, {"n": 1}, {"n": 2}, None]


def test_a_message_is_written_under_a_hidden_name_and_renamed_into_place(connection, folder, monkeypatch):
    queue = _queue(connection)
    seen_while_writing = []
    real_replace = os.replace

    def replace(src, dst):
        seen_while_writing.append(sorted(os.listdir(folder / "queue")))
        real_replace(src, dst)

    monkeypatch.setattr(embedded_broker.os, "replace", replace)
    _publish(connection, queue, {"n": 1})

    [names] = seen_while_writing
    [name] = names
    assert name.startswith(".") and name.endswith(".partial")  # no listing matches it: nobody reads it yet
    assert _get(connection, queue) == {"n": 1}
    assert os.listdir(folder / "queue") == []


def test_an_empty_message_file_is_left_for_the_next_poll_and_the_good_ones_still_go(connection, folder):
    queue = _queue(connection)
    half_written = folder / "queue" / f"1_x.{queue.name}.msg"  # what kombu's own writer shows while it writes
    half_written.write_bytes(b"")
    _publish(connection, queue, {"n": 1})

    assert _get(connection, queue) == {"n": 1}
    assert _get(connection, queue) is None
    assert half_written.exists()  # not taken: its writer may still finish it

    half_written.write_bytes(b'{"body": "not a kombu message"')  # finished, but damaged
    old = time.time() - UNREADABLE_GRACE_SECONDS - 1
    os.utime(half_written, (old, old))
    assert _get(connection, queue) is None
    assert not half_written.exists()
    assert (folder / "queue" / f"1_x.{queue.name}.msg.unreadable").exists()  # set aside, never read again
    assert _get(connection, queue) is None


def test_a_message_another_consumer_took_first_is_not_taken_again(connection, folder, monkeypatch):
    queue = _queue(connection)
    _publish(connection, queue, {"n": 1})
    real_remove = os.remove

    def removed_by_the_other_consumer_first(path):
        real_remove(path)  # the other consumer's claim
        raise FileNotFoundError(path)  # ours finds it gone

    monkeypatch.setattr(embedded_broker.os, "remove", removed_by_the_other_consumer_first)
    with pytest.raises(Empty):
        connection.default_channel._get(queue.name)
    assert os.listdir(folder / "queue") == []
