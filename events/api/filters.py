import django_filters

from events.models import Event


class EventFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="event_type_id")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["type", "since", "until", "source"]
