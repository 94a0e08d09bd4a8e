"""Filters shared by the API's list operations."""

from datetime import UTC

import django_filters


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time, any UTC offset Python reads (up to +-23:59), compared in UTC.

    PostgreSQL refuses offsets beyond +-15:59, so the value is converted before the query.
    """

    def filter(self, qs, value):
        return super().filter(qs, value.astimezone(UTC) if value is not None else value)
