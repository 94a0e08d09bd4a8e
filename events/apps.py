from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


class EventsConfig(AppConfig):
    name = "events"

    def ready(self) -> None:
        from events.models import EventType
        from events.schemas import forget_saved_type
        from events.services import sync_catalog_after_migrate

        post_migrate.connect(sync_catalog_after_migrate, sender=self)
        post_save.connect(forget_saved_type, sender=EventType)
