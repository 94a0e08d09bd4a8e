"""System checks that tell the operator about insecure defaults."""

from django.core.checks import Warning, register

from webhookhub.conf import setting


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
