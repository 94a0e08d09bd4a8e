"""Every pin of requirements/*.txt is in the lock file that installs it, at the same version, with hashes."""

import re
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;#]+)")


def _pins(name: str) -> dict[str, str]:
    """name -> version of a requirement set, following its ``-r`` includes."""
    pins: dict[str, str] = {}
    for line in (REQUIREMENTS / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            pins.update(_pins(line[3:].strip()))
        elif match := PIN.match(line):
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def _locked(name: str) -> dict[str, str]:
    text = (REQUIREMENTS / name).read_text()
    assert "--hash=sha256:" in text
    return {m[1].lower().replace("_", "-"): m[2] for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==(\S+) \\", text, re.M)}


@pytest.mark.parametrize(
    ("lock", "sets"), [("base.lock", ["base.txt"]), ("prod.lock", ["prod.txt"]), ("dev.lock", ["dev.txt", "prod.txt"])]
)
def test_each_lock_file_pins_what_its_requirement_sets_ask_for(lock, sets):
    locked = _locked(lock)
    asked = {name: version for requirement_set in sets for name, version in _pins(requirement_set).items()}

    assert len(locked) >= len(asked)
    stale = {name: (version, locked.get(name)) for name, version in asked.items() if locked.get(name) != version}
    assert not stale, f"run scripts/lock: {stale}"
