"""System checks that tell the operator about insecure defaults."""

from django.conf import settings
from django.core.checks import Warning, register

from ground.conf import setting


@register(deploy=True)
def encryption_key_check(app_configs, **kwargs):
    if setting("ENCRYPTION_KEY_DERIVED"):
        return [
            Warning(
                "WEBHOOKHUB_ENCRYPTION_KEY is not set: secrets are encrypted with a key derived from SECRET_KEY.",
                hint="Fine for the local demo; set WEBHOOKHUB_ENCRYPTION_KEY (a Fernet key) everywhere else.",
                id="webhookhub.W001",
            )
        ]
    return []


@register(deploy=True)
def shared_cache_check(app_configs, **kwargs):
    if settings.PRODUCTION and not settings.CACHE_URL:
        return [
            Warning(
                "CACHE_URL is not set: each web process counts API throttles on its own.",
                hint="Set CACHE_URL=redis://... so that every web process shares one count.",
                id="webhookhub.W002",
            )
        ]
    return []
