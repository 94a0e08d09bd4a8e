from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.scoping import TenantScopedMixin
from subscriptions.api.serializers import (
    CreatedEndpointSerializer,
    EndpointSerializer,
    EndpointWriteSerializer,
    SecretSerializer,
)
from subscriptions.models import Endpoint
from subscriptions.services import (
    ADMIN_DISABLED_REASON,
    create_endpoint,
    disable_endpoint,
    enable_endpoint,
    primary_secret,
    rotate_secret,
    update_endpoint,
)


class EndpointSettingsViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """Webhook endpoints of the tenant, their settings (create, read, change, delete, secrets). Another
    tenant's endpoints answer 404. ``webhookhub.web.api.views.EndpointViewSet`` adds what touches deliveries."""

    serializer_class = EndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ["enabled"]

    def get_queryset(self):
        return self.scope(Endpoint.objects.select_related("tenant"))

    @extend_schema(request=EndpointWriteSerializer, responses={201: CreatedEndpointSerializer})
    def create(self, request):
        serializer = EndpointWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user if getattr(request.user, "pk", None) else None
        created = create_endpoint(tenant=self.tenant_for_write(), created_by=user, **serializer.to_service_kwargs())
        body = EndpointSerializer(created.endpoint).data | {"secret": created.secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=EndpointWriteSerializer, responses={200: EndpointSerializer})
    def partial_update(self, request, pk=None):
        serializer = EndpointWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = update_endpoint(endpoint=self.get_object(), **serializer.to_service_kwargs())
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(responses={200: SecretSerializer})
    @action(detail=True, methods=["get"])
    def secret(self, request, pk=None):
        return Response({"secret": primary_secret(self.get_object())})

    @extend_schema(request=None, responses={200: SecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        return Response({"secret": rotate_secret(endpoint=self.get_object())})

    @extend_schema(request=None, responses={200: EndpointSerializer})
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        endpoint = self.get_object()
        enable_endpoint(endpoint=endpoint)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(request=None, responses={200: EndpointSerializer})
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        endpoint = self.get_object()
        disable_endpoint(endpoint=endpoint, reason=ADMIN_DISABLED_REASON, notify=False)
        return Response(EndpointSerializer(endpoint).data)
