"""Runs the platform's processes for ``scripts/run`` and never lets one die silently.

Usage: ``supervise.py 'web=CMD ...' 'worker=CMD ...' 'beat=CMD ...'``. Each process runs with
the supervisor's terminal. When one exits unexpectedly the supervisor says which and why (its
exit status or signal; its own last words are above on the terminal) and starts it again,
up to ``RESTARTS`` times in ``WINDOW_SECONDS``; past that it stops everything with that message
and exits 1. Never a half-running platform. Ctrl-C (or SIGTERM) stops everything.
"""

import os
import shlex
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field

RESTARTS = 5  # ... at most, per process, in
WINDOW_SECONDS = 300.0
STOP_TIMEOUT_SECONDS = 20.0  # a worker's warm shutdown finishes its sends; then it is killed


@dataclass
class Child:
    name: str
    args: list[str]
    popen: subprocess.Popen[bytes] | None = None
    exits: deque[float] = field(default_factory=deque)

    def start(self) -> None:
        self.popen = subprocess.Popen(self.args)  # noqa: S603 - the commands scripts/run gives


def say(message: str) -> None:
    print(f"webhookhub: {message}", file=sys.stderr, flush=True)


def why(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


def stop_all(children: list[Child]) -> None:
    running = [child for child in children if child.popen is not None and child.popen.poll() is None]
    for child in running:
        assert child.popen is not None
        child.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in running:
        assert child.popen is not None
        try:
            child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"the {child.name} did not stop within {STOP_TIMEOUT_SECONDS:.0f} s; killing it.")
            child.popen.kill()
            child.popen.wait()


class Stop(Exception):
    """Ctrl-C or SIGTERM reached the supervisor."""


def _stop(signum: int, frame: object) -> None:
    raise Stop


def supervise(children: list[Child]) -> int:
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        for child in children:
            child.start()
        while True:
            pid, status = os.wait()
            child = next((child for child in children if child.popen is not None and child.popen.pid == pid), None)
            if child is None or child.popen is None:
                continue
            child.popen.returncode = os.waitstatus_to_exitcode(status)
            if not restart(child):
                stop_all(children)
                return 1
    except Stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        say("stopping web, worker and sweeper.")
        stop_all(children)
        return 0


def restart(child: Child) -> bool:
    """Say why the child exited and start it again; False once it exited too often (then nothing is started)."""
    assert child.popen is not None
    now = time.monotonic()
    child.exits.append(now)
    while child.exits and now - child.exits[0] > WINDOW_SECONDS:
        child.exits.popleft()
    reason = why(child.popen.returncode)
    if len(child.exits) > RESTARTS:
        times = f"{len(child.exits)} times in {WINDOW_SECONDS:.0f} s"
        say(f"the {child.name} exited ({reason}) {times}; stopping everything.")
        return False
    say(f"the {child.name} exited ({reason}); starting it again ({len(child.exits)} of {RESTARTS}).")
    child.start()
    return True


def main(argv: list[str]) -> int:
    children = []
    for spec in argv:
        name, separator, command = spec.partition("=")
        if not separator or not name or not command:
            raise SystemExit(f"usage: supervise.py NAME=COMMAND ... (got {spec!r})")
        children.append(Child(name, shlex.split(command)))
    return supervise(children)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
