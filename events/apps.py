from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EventsConfig(AppConfig):
    name = "events"

    def ready(self) -> None:
        from events.services import sync_catalog_after_migrate

        post_migrate.connect(sync_catalog_after_migrate, sender=self)
