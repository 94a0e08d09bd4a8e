"""Programs the tests start (redis-server, PostgreSQL's initdb and pg_ctl, runuser, chromium), found as a
person's shell finds them, with the sbin folders a login shell has even when ``PATH`` lacks them.

A missing one skips its tests locally with the reason, and fails them in CI, where ``.ci/run``
installs every one.
"""

import os
import shutil

import pytest

_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def find(name: str) -> str | None:
    """The program's path, looked up on ``PATH`` and then in the sbin folders."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN])
    return shutil.which(name, path=path)


def require(name: str | None, what: str, *, found: str | None = None) -> str:
    """The program's path (``found`` if given, else ``find(name)``); without it the test skips (CI: fails)."""
    path = found if found is not None else (find(name) if name else None)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{what} is required in CI (.ci/run installs it)")
        pytest.skip(f"{what} is not installed")
    return path
