import django_filters

from accounts.api.filters import UtcDateTimeFilter
from deliveries.models import Delivery, DeliveryStatus


class DeliveryFilter(django_filters.FilterSet):
    endpoint = django_filters.CharFilter(field_name="endpoint_id")
    event = django_filters.CharFilter(field_name="event_id")
    event_type = django_filters.CharFilter(field_name="event__event_type_id")
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    since = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Delivery
        fields = ["endpoint", "event", "event_type", "status", "since", "until"]
