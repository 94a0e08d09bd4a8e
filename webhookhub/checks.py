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


@register()
def retry_schedules_check(app_configs, **kwargs):
    """The deployment's retry schedule and every named one keep to the bounds an endpoint's own list must keep to
    (an admin choosing a named schedule should not get what they could not type)."""
    from subscriptions.validation import retry_delays_problem

    config = {
        name: setting(name)
        for name in ("RETRY_SCHEDULE_MAX_RETRIES", "RETRY_DELAY_MIN_SECONDS", "RETRY_DELAY_MAX_SECONDS")
    }
    schedules = {"RETRY_SCHEDULE": setting("RETRY_SCHEDULE")}
    schedules |= {f"RETRY_SCHEDULES[{name!r}]": delays for name, delays in setting("RETRY_SCHEDULES").items()}
    bounds = (
        f"at most {config['RETRY_SCHEDULE_MAX_RETRIES']} retries of {config['RETRY_DELAY_MIN_SECONDS']} to "
        f"{config['RETRY_DELAY_MAX_SECONDS']} seconds each"
    )
    return [
        Warning(
            f"WEBHOOKHUB {where} {problem}.",
            hint=f"Keep retry schedules to the bounds endpoints must keep to: {bounds} (RETRY_SCHEDULE_MAX_RETRIES, "
            "RETRY_DELAY_MIN_SECONDS, RETRY_DELAY_MAX_SECONDS).",
            id="webhookhub.W005",
        )
        for where, delays in schedules.items()
        if (problem := retry_delays_problem(delays, config))
    ]
