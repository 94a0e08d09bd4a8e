from collections.abc import Mapping

from rest_framework.throttling import SimpleRateThrottle

from deliveries.services.batch_publishing import MAX_BATCH
from webhookhub.web.api.authentication import ApiKeyPrincipal


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per API key, for every key-authenticated call (``DEFAULT_THROTTLE_RATES['api_key']``)."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.user, ApiKeyPrincipal):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.api_key.pk}


class PublishRateThrottle(SimpleRateThrottle):
    """Per tenant, on publishing (``DEFAULT_THROTTLE_RATES['publish']``): the rate counts events, so a
    batch of n events counts n."""

    scope = "publish"

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        weight = _events_in(request) if getattr(view, "action", None) == "batch" else 1
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) + weight > self.num_requests:
            return self.throttle_failure()
        self.history[:0] = [self.now] * weight
        self.cache.set(self.key, self.history, self.duration)
        return True

    def get_cache_key(self, request, view):
        access = getattr(request, "access", None)
        ident = access.tenant.pk if access and access.tenant else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def _events_in(request) -> int:
    """How many events a batch call publishes, for the rate (1 for a body that is not a batch: the
    view refuses it with a 400)."""
    data = request.data
    events = data.get("events") if isinstance(data, Mapping) else None
    return min(max(1, len(events)), MAX_BATCH) if isinstance(events, list) else 1
