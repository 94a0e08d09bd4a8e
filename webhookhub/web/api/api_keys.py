"""``/api/v1/api-keys/``: the tenant's API keys. The full key is shown once, in the answer that creates it;
afterwards only its prefix."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import ApiKey, Role
from accounts.services import create_api_key, revoke_api_key
from webhookhub.web.api.scoping import TenantScopedMixin
from webhookhub.web.api.strict import StrictFieldsMixin, refuse_any_body


class ApiKeySerializer(StrictFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "role", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]
        extra_kwargs = {"name": {"required": True, "allow_blank": False, "max_length": 200}}

    role = serializers.ChoiceField(choices=Role.choices, default=Role.ADMIN)


class CreatedApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. Shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The tenant's API keys: only their prefix is ever shown after creation."""

    serializer_class = ApiKeySerializer

    def get_queryset(self):
        return self.scope(ApiKey.objects.all())

    @extend_schema(request=ApiKeySerializer, responses={201: CreatedApiKeySerializer})
    def create(self, request):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = create_api_key(tenant=self.tenant_for_write(), **serializer.validated_data)
        body = CreatedApiKeySerializer(created.api_key).data | {"key": created.key}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        api_key = self.get_object()
        refuse_any_body(request)
        return Response(ApiKeySerializer(revoke_api_key(api_key=api_key)).data)
