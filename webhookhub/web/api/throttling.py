from rest_framework.throttling import SimpleRateThrottle

from webhookhub.web.api.authentication import ApiKeyPrincipal


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per API key, for every key-authenticated call (``DEFAULT_THROTTLE_RATES['api_key']``)."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.user, ApiKeyPrincipal):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.api_key.pk}


class PublishRateThrottle(SimpleRateThrottle):
    """Per tenant, on publishing (``DEFAULT_THROTTLE_RATES['publish']``)."""

    scope = "publish"

    def get_cache_key(self, request, view):
        access = getattr(request, "access", None)
        ident = access.tenant.pk if access and access.tenant else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
