"""``/api/v1/triggers/``: inbound triggers of the tenant, their paths, keys and request log."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from events import field_mapping
from events.models import Trigger, TriggerRequest
from events.triggers import MAX_RATE_LIMIT_PER_MINUTE, create_trigger, rotate_trigger_key, update_trigger
from webhookhub.web.api.errors import as_drf
from webhookhub.web.api.scoping import TenantScopedMixin
from webhookhub.web.api.strict import StrictFieldsMixin, refuse_any_body

_MAPPING_HELP = 'Paths in the request body to fields of the event data: {"contact.phone": "phone"}.'


class TriggerSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="Where the external system POSTs its JSON.")
    event_type = serializers.CharField(source="event_type_id")
    available_paths = serializers.ListField(
        source="sample_paths", child=serializers.CharField(), read_only=True, help_text="The sample's paths, in order."
    )

    class Meta:
        model = Trigger
        fields = [
            "id",
            "name",
            "event_type",
            "enabled",
            "url",
            "key_prefix",
            "sample",
            "identifier",
            "ordering_key_path",
            "mapping",
            "available_paths",
            "rate_limit_per_minute",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_url(self, trigger: Trigger) -> str:
        path = reverse("trigger-capture", args=[trigger.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class CreatedTriggerSerializer(TriggerSerializer):
    api_key = serializers.CharField(help_text="Shown only in this answer; only its hash is kept.")

    class Meta(TriggerSerializer.Meta):
        fields = [*TriggerSerializer.Meta.fields, "api_key"]


class TriggerWriteSerializer(StrictFieldsMixin, serializers.Serializer):
    """Shapes only; the service checks the event type, the sample, the mapping, the identifier and the key path."""

    read_only_names = frozenset({"id", "url", "key_prefix", "available_paths", "api_key", "created_at", "updated_at"})

    name = serializers.CharField(max_length=200)
    event_type = serializers.CharField(max_length=100)
    enabled = serializers.BooleanField(required=False)
    sample = serializers.JSONField(help_text="An example request body (a JSON object).")
    identifier = serializers.CharField(max_length=500, help_text="The path every request must carry.")
    ordering_key_path = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="A path whose value (a string or an integer) becomes the event's ordering key;"
        " empty: the event type's default.",
    )
    mapping = serializers.DictField(child=serializers.CharField(), required=False, help_text=_MAPPING_HELP)
    rate_limit_per_minute = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_RATE_LIMIT_PER_MINUTE
    )


class TriggerKeySerializer(serializers.Serializer):
    api_key = serializers.CharField()


class SampleSerializer(StrictFieldsMixin, serializers.Serializer):
    sample = serializers.JSONField(help_text="An example request body (a JSON object).")


class PathsSerializer(serializers.Serializer):
    paths = serializers.ListField(child=serializers.CharField())


class TriggerRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = TriggerRequest
        fields = ["id", "received_at", "source_ip", "status_code", "outcome", "detail", "event", "body_excerpt"]
        read_only_fields = fields


class NewestRequestsFirst(CursorPagination):
    ordering = ("-received_at", "-id")
    page_size = 50


class TriggerViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """Inbound triggers: a URL and key per external system, whose JSON becomes events of one type."""

    serializer_class = TriggerSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ["enabled", "event_type"]

    def get_queryset(self):
        return self.scope(Trigger.objects.all())

    @extend_schema(request=TriggerWriteSerializer, responses={201: CreatedTriggerSerializer})
    def create(self, request):
        serializer = TriggerWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user if getattr(request.user, "pk", None) else None
        try:
            created = create_trigger(tenant=self.tenant_for_write(), created_by=user, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise as_drf(exc) from exc
        body = TriggerSerializer(created.trigger, context={"request": request}).data | {"api_key": created.api_key}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=TriggerWriteSerializer, responses={200: TriggerSerializer})
    def partial_update(self, request, pk=None):
        serializer = TriggerWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            trigger = update_trigger(trigger=self.get_object(), **serializer.validated_data)
        except DjangoValidationError as exc:
            raise as_drf(exc) from exc
        return Response(TriggerSerializer(trigger, context={"request": request}).data)

    @extend_schema(request=None, responses={200: TriggerKeySerializer})
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request, pk=None):
        """A new key, shown once; the old one stops working at once."""
        trigger = self.get_object()
        refuse_any_body(request)
        return Response({"api_key": rotate_trigger_key(trigger=trigger)})

    @extend_schema(request=SampleSerializer, responses={200: PathsSerializer})
    @action(detail=False, methods=["post"])
    def paths(self, request):
        """The paths a mapping may use, listed from a sample body (before creating a trigger)."""
        serializer = SampleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            return Response({"paths": field_mapping.available_paths(serializer.validated_data["sample"])})
        except field_mapping.MappingError as exc:
            raise serializers.ValidationError({"sample": [str(exc)]}) from exc

    @extend_schema(responses={200: TriggerRequestSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def requests(self, request, pk=None):
        """What this trigger received, newest first."""
        paginator = NewestRequestsFirst()
        page = paginator.paginate_queryset(self.get_object().requests.all(), request, view=self)
        return paginator.get_paginated_response(TriggerRequestSerializer(page, many=True).data)
