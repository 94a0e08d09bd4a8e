"""The time windows statistics are asked for (the dashboard's picker, the API's ``stats/?window=``)."""

from dataclasses import dataclass
from datetime import timedelta

from deliveries.models import Granularity


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    length: timedelta
    granularity: int  # which rollups to read
    step: timedelta  # one chart bar


WINDOWS = {
    window.key: window
    for window in (
        Window("1h", "1 hour", timedelta(hours=1), Granularity.FIVE_MINUTES, timedelta(minutes=5)),
        Window("24h", "24 hours", timedelta(hours=24), Granularity.HOUR, timedelta(hours=1)),
        Window("7d", "7 days", timedelta(days=7), Granularity.HOUR, timedelta(hours=4)),
        Window("30d", "30 days", timedelta(days=30), Granularity.HOUR, timedelta(days=1)),
    )
}
DEFAULT_WINDOW = "24h"
