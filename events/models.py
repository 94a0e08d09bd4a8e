import re

from django.core.validators import RegexValidator
from django.db import models

from webhookhub.accounts.models import Tenant
from webhookhub.ids import new_id

EVENT_TYPE_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


class EventType(models.Model):
    name = models.CharField(
        primary_key=True,
        max_length=100,
        validators=[RegexValidator(EVENT_TYPE_NAME, "Use dotted lower-case names such as 'message.received'.")],
    )
    description = models.TextField(blank=True)
    schema = models.JSONField(null=True, blank=True, help_text="Optional JSON Schema of the event data.")
    example = models.JSONField(default=dict, blank=True)
    archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EventSource(models.TextChoices):
    APP = "app", "Application"
    API = "api", "Ingestion API"
    TRIGGER = "trigger", "Inbound trigger"
    TEST = "test", "Test event"


def _event_id() -> str:
    return new_id("evt")


class Event(models.Model):
    """One domain event. ``body`` holds the exact bytes every delivery sends and signs."""

    id = models.CharField(primary_key=True, max_length=40, default=_event_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="events")
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, db_column="type", related_name="events")
    data = models.JSONField()
    body = models.TextField()
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    source = models.CharField(max_length=16, choices=EventSource.choices, default=EventSource.APP)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="event_unique_idempotency_key",
            )
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="event_tenant_created")]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type_id}"
