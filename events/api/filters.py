import django_filters

from accounts.api.filters import UtcDateTimeFilter
from events.models import Event


class EventFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="event_type_id")
    since = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["type", "since", "until", "source"]
