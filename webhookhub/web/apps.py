from django.apps import AppConfig


class WebConfig(AppConfig):
    """Installed so Django finds this layer's admin, management commands, templates, template tags and static files."""

    name = "webhookhub.web"
    label = "web"
    verbose_name = "webhookhub web"

    def ready(self) -> None:
        from webhookhub import checks  # noqa: F401  (registers the deployment's system checks)
