"""``Authorization: Bearer <tenant API key>``: keys are looked up by hash; unknown or revoked ones get 401."""

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.models import ApiKey
from accounts.services import API_KEY_PREFIX, authenticate_api_key


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """The ``request.user`` of a key-authenticated call."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_superuser: bool = False
    is_staff: bool = False

    @property
    def pk(self) -> None:  # throttling and logging look for it
        return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        key = key.strip()
        if not key.startswith(API_KEY_PREFIX):
            raise exceptions.AuthenticationFailed("Malformed API key.")
        api_key = authenticate_api_key(key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "tenantApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A tenant API key (whk_...)."}
