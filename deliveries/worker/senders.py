"""The sender threads: each makes one request at a time, over the process's pooled connections."""

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from deliveries.models import Delivery
from deliveries.services.sending import SendResult, not_sent, send_one
from deliveries.worker.lanes import Start

logger = logging.getLogger(__name__)


class Senders:
    def __init__(self, config: dict[str, Any], *, answered: Callable[[SendResult], None]) -> None:
        """``answered`` is called, on the sender thread, as each request finishes."""
        self.config = config
        self._answered = answered
        self._pool = ThreadPoolExecutor(max_workers=config["SEND_CONCURRENCY"], thread_name_prefix="webhookhub-send")

    def start(self, starts: list[Start]) -> None:
        for delivery, batch in starts:
            future = self._pool.submit(self._send, delivery, batch.secrets[delivery.endpoint_id])
            future.add_done_callback(self._done)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)

    def _send(self, delivery: Delivery, secrets: list[str]) -> SendResult:
        try:
            return send_one(delivery, secrets, self.config)
        except Exception:  # noqa: BLE001 - a bug in one send must not stop the others
            logger.exception("Sending delivery %s failed unexpectedly.", delivery.pk)
            return not_sent(delivery, "internal error in the sender (see the worker log).")

    def _done(self, future: "Future[SendResult]") -> None:
        self._answered(future.result())
