"""The embedded default's broker: kombu's filesystem transport, made safe for several processes.

kombu's own filesystem transport creates a message file under its final name and then writes
it, and a consumer that lists the folder in between reads an empty file; the JSON error is
fatal to the consuming worker (kombu issue 1551). Here:

- a message is written under a hidden name and renamed into place when complete (a rename
  within one folder is atomic), so a consumer never sees part of one;
- a consumer reads a message, then claims it by deleting it: of two consumers that read the
  same file, only the one whose delete succeeds takes it;
- a file that does not parse (written by another program, or damaged) is logged, left for
  the next poll for a while, then set aside as ``<name>.unreadable``; it never stops the worker.

Messages are only doorbells (the database holds the work), so one set aside costs at most a
sweep interval of latency.
"""

import logging
import os
import time
import uuid
from queue import Empty
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

UNREADABLE_GRACE_SECONDS = 10.0  # an unreadable file this old is set aside (a writer would have finished)
_PARTIAL_PREFIX = "."  # hidden while being written; kombu's listings skip names that do not end in .<queue>.msg


class Channel(filesystem.Channel):
    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:  # type: ignore[override]  # kombu passes kwargs (virtual base.py)
        """Write the message under a hidden name, then rename it into place whole."""
        name = f"{time.monotonic_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"  # sorts oldest first
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f"{_PARTIAL_PREFIX}{name}.partial")
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(message)))
            os.replace(partial, final)
        except OSError as exc:
            _remove_quietly(partial)
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        """The oldest readable message of ``queue``; raises Empty when there is none (never anything else)."""
        wanted = f"{queue}.msg"
        try:
            names = sorted(os.listdir(self.data_folder_in))
        except OSError as exc:
            logger.warning("The broker folder %s cannot be read (%s).", self.data_folder_in, exc)
            raise Empty() from exc
        for name in names:
            if name.partition(".")[2] != wanted:
                continue
            path = os.path.join(self.data_folder_in, name)
            try:
                with open(path, "rb") as handle:
                    payload = handle.read()
                message = loads(bytes_to_str(payload))
            except FileNotFoundError:
                continue  # another consumer took it
            except (OSError, ValueError) as exc:
                _unreadable(path, exc)
                continue
            try:
                os.remove(path)  # the claim: only one consumer's remove succeeds
            except FileNotFoundError:
                continue
            return message
        raise Empty()


def _unreadable(path: str, exc: Exception) -> None:
    """Leave a file that does not parse for the next poll; once it is old enough to be complete, set it aside."""
    try:
        age = time.time() - os.path.getmtime(path)
    except OSError:
        return  # gone meanwhile
    if age < UNREADABLE_GRACE_SECONDS:
        logger.info("Broker message %s cannot be read yet (%s); trying again at the next poll.", path, exc)
        return
    try:
        os.replace(path, f"{path}.unreadable")
    except OSError:
        return
    logger.error("Broker message %s cannot be read (%s); set aside as %s.unreadable.", path, exc, path)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


class Transport(filesystem.Transport):
    """``CELERY_BROKER_TRANSPORT`` for ``filesystem://``: the same folders, messages written atomically."""

    Channel = Channel
