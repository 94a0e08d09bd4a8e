"""``/api/v1/endpoints/``: the tenant's webhook endpoints, their settings, secrets and public signing keys, and what
touches their deliveries (a test event, a replay, stats). Another tenant's endpoints answer 404."""

from dataclasses import asdict

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from deliveries.numbers.stats import endpoint_stats
from deliveries.numbers.windows import DEFAULT_WINDOW, WINDOWS
from deliveries.preview import checked_proposal, preview
from deliveries.selectors import scheduling_state
from deliveries.services.actions import replay, send_test_event
from deliveries.services.enabling import enable_after_test
from events.exceptions import PublishError
from subscriptions.models import Endpoint
from subscriptions.selectors import public_keys
from subscriptions.services import (
    ADMIN_DISABLED_REASON,
    create_endpoint,
    disable_endpoint,
    primary_secret,
    rotate_secret,
    rotate_signing_key,
    rotate_verification_token,
    update_endpoint,
)
from webhookhub.web.api.deliveries import DeliverySerializer
from webhookhub.web.api.endpoint_serializers import (
    CreatedEndpointSerializer,
    EnableRefusedSerializer,
    EnableRequestSerializer,
    EndpointDetailSerializer,
    EndpointSerializer,
    EndpointWriteSerializer,
    PreviewRequestSerializer,
    PreviewSerializer,
    PublicKeySerializer,
    PublicKeysSerializer,
    ReplayResultSerializer,
    ReplaySerializer,
    SecretSerializer,
    StatsSerializer,
    TestEventSerializer,
    VerificationTokenSerializer,
)
from webhookhub.web.api.scoping import TenantScopedMixin
from webhookhub.web.api.strict import refuse_any_body


class EndpointViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """Endpoints, with the actions that touch deliveries: test, replay, stats; reading one shows its scheduling."""

    serializer_class = EndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ["enabled"]

    def get_queryset(self):
        return self.scope(Endpoint.objects.select_related("tenant"))

    # --- settings ------------------------------------------------------------------------------
    @extend_schema(request=EndpointWriteSerializer, responses={201: CreatedEndpointSerializer})
    def create(self, request):
        serializer = EndpointWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user if getattr(request.user, "pk", None) else None
        created = create_endpoint(tenant=self.tenant_for_write(), created_by=user, **serializer.to_service_kwargs())
        body = EndpointSerializer(created.endpoint).data | {"secret": created.secret}
        if created.verification_token:
            body["verification_token"] = created.verification_token  # this once
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: EndpointDetailSerializer})
    def retrieve(self, request, pk=None):
        return Response(EndpointDetailSerializer(self.get_object()).data)

    @extend_schema(request=EndpointWriteSerializer, responses={200: EndpointSerializer})
    def partial_update(self, request, pk=None):
        serializer = EndpointWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = update_endpoint(endpoint=self.get_object(), **serializer.to_service_kwargs())
        body = EndpointSerializer(endpoint).data
        if endpoint.issued_verification_token:  # the first switch to heymarket: this once
            body["verification_token"] = endpoint.issued_verification_token
        return Response(body)

    @extend_schema(responses={200: SecretSerializer})
    @action(detail=True, methods=["get"])
    def secret(self, request, pk=None):
        return Response({"secret": primary_secret(self.get_object())})

    @extend_schema(request=None, responses={200: SecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = self.get_object()
        refuse_any_body(request)
        return Response({"secret": rotate_secret(endpoint=endpoint)})

    @extend_schema(
        responses={200: PublicKeysSerializer},
        description="The public keys receivers verify v1a (Ed25519) signatures with: the primary first, then keys "
        "rotated out that still sign until their expires_at. The private keys never leave the platform.",
    )
    @action(detail=True, methods=["get"], url_path="public-key")
    def public_key(self, request, pk=None):
        keys = public_keys(self.get_object(), now=timezone.now())
        body = {"public_key": keys[0].public_key if keys else None, "keys": [asdict(key) for key in keys]}
        return Response(PublicKeysSerializer(body).data)

    @extend_schema(
        request=None,
        responses={200: PublicKeySerializer},
        description="A new primary v1a (Ed25519) key, answered as its public key; the previous keys keep signing for "
        "the grace period, as after rotate-secret/. The v1 secret is unchanged.",
    )
    @action(detail=True, methods=["post"], url_path="rotate-signing-key")
    def rotate_signing_key(self, request, pk=None):
        endpoint = self.get_object()
        refuse_any_body(request)
        return Response(PublicKeySerializer({"public_key": rotate_signing_key(endpoint=endpoint)}).data)

    @extend_schema(request=None, responses={200: VerificationTokenSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-verification-token")
    def rotate_verification_token(self, request, pk=None):
        endpoint = self.get_object()
        refuse_any_body(request)
        return Response({"verification_token": rotate_verification_token(endpoint=endpoint)})

    @extend_schema(
        request=EnableRequestSerializer,
        responses={200: EndpointSerializer, 409: EnableRefusedSerializer},
        description="Enable a disabled endpoint once it answers: it is sent a webhook.test event now (signed, with "
        "its auth header, within its timeout; recorded in the delivery log) and enabled only on a 2xx, with its "
        "failing clock, circuit, pause and adaptive concurrency started afresh. Otherwise 409 with the test's "
        'status and error, and the endpoint stays disabled. {"force": true} enables without a test. An endpoint '
        "already enabled is answered as it is.",
    )
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        endpoint = self.get_object()
        serializer = EnableRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = enable_after_test(endpoint, force=serializer.validated_data["force"])
        if result.enabled:
            endpoint.refresh_from_db()
            return Response(EndpointSerializer(endpoint).data)
        test = {"status_code": result.status_code, "error": result.error, "delivery_id": result.delivery_id}
        detail = (
            f"Not enabled: the test event failed ({result.answer}). The endpoint stays disabled; fix it and "
            'try again, or enable it without a test with {"force": true}.'
        )
        return Response(EnableRefusedSerializer({"detail": detail, "test": test}).data, status=status.HTTP_409_CONFLICT)

    @extend_schema(request=None, responses={200: EndpointSerializer})
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        endpoint = self.get_object()
        refuse_any_body(request)
        disable_endpoint(endpoint=endpoint, reason=ADMIN_DISABLED_REASON, notify=False)
        return Response(EndpointSerializer(endpoint).data)

    # --- deliveries ----------------------------------------------------------------------------
    @extend_schema(request=TestEventSerializer, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        serializer = TestEventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            delivery = send_test_event(endpoint=self.get_object(), data=serializer.validated_data.get("data"))
        except PublishError as exc:
            raise serializers.ValidationError({"data": [str(exc)]}) from exc
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=PreviewRequestSerializer, responses={200: PreviewSerializer})
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        """A dry run on the tenant's latest real events of the endpoint's types: which would be sent, with the
        exact body and headers (secrets masked), and why the others would not; optionally with a proposed
        payload_format, payload_shape or filter instead of the saved ones. Nothing is sent or saved."""
        serializer = PreviewRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        endpoint = self.get_object()
        trial = checked_proposal(endpoint, data)
        items = preview(endpoint, now=timezone.now(), limit=data["limit"], trial=trial)
        return Response(PreviewSerializer({"results": [asdict(item) for item in items]}).data)

    @extend_schema(request=ReplaySerializer, responses={200: ReplayResultSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        serializer = ReplaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        count = replay(
            endpoint=self.get_object(),
            statuses=sorted(data["status"]),
            since=data["since"],
            until=data["until"],
            dry_run=data["dry_run"],
        )
        return Response({"count": count, "dry_run": data["dry_run"]})

    @extend_schema(
        parameters=[OpenApiParameter("window", str, enum=list(WINDOWS), default=DEFAULT_WINDOW)],
        responses={200: StatsSerializer},
    )
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        window = request.query_params.get("window", DEFAULT_WINDOW)
        if window not in WINDOWS:
            raise DjangoValidationError({"window": f"Choose one of {', '.join(WINDOWS)}."})
        endpoint = self.get_object()
        now = timezone.now()
        stats = endpoint_stats(endpoint=endpoint, window=WINDOWS[window], now=now)
        scheduling = scheduling_state(endpoint, now=now)
        return Response(StatsSerializer({**asdict(stats), "scheduling": scheduling}).data)
