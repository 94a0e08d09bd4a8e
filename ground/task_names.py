"""The names of the Celery tasks that processes send or schedule by name (the apps define the tasks)."""

DRAIN_TASK = "deliveries.drain"
SWEEP_TASK = "deliveries.sweep"
NOTIFY_DISABLED_TASK = "subscriptions.notify_endpoint_disabled"
NOTIFY_DISABLE_WARNING_TASK = "subscriptions.notify_disable_warning"
WARN_EXPIRING_CERTIFICATES_TASK = "subscriptions.warn_expiring_certificates"
