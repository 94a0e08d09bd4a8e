"""Upper bounds for end-to-end timing assertions, derived from the settings the timing depends on.

A bound is the settings' own time (a sweep interval, a lease, a retry delay, a probe's backoff)
plus ``SLACK_SECONDS``: what a busy two-core machine (a second job running beside the suite)
may add to a step that needs a few scheduler slices (a process woken, a claim, a request over
loopback). Ceilings of waits that only end a failing test early are not bounds and stay generous.
"""

SLACK_SECONDS = 2.0


def bound(*settings_seconds: float) -> float:
    """The sum of the settings' times that a step may wait through, plus the slack."""
    return sum(settings_seconds) + SLACK_SECONDS
