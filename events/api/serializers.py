from rest_framework import serializers

from events.models import EVENT_TYPE_NAME, Event, EventType


class EventTypeSerializer(serializers.ModelSerializer):
    name = serializers.RegexField(EVENT_TYPE_NAME, max_length=100, help_text="dotted lower case, e.g. order.paid")

    class Meta:
        model = EventType
        fields = ["name", "description", "schema", "example", "archived"]

    def validate_name(self, value: str) -> str:
        if EventType.objects.filter(name=value).exists():
            raise serializers.ValidationError("An event type with this name exists.")
        return value


class EventSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="event_type_id")

    class Meta:
        model = Event
        fields = ["id", "type", "data", "occurred_at", "created_at", "idempotency_key", "source"]
        read_only_fields = fields
