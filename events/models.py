import re

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from accounts.models import Tenant
from ground.ids import new_id

EVENT_TYPE_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


class SchemaMode(models.TextChoices):
    """What publishing does with data that breaks its type's schema (``events.schemas``)."""

    OFF = "off", "Off: not checked"
    WARN = "warn", "Warn: published, logged and counted"
    ENFORCE = "enforce", "Enforce: refused"


class EventType(models.Model):
    name = models.CharField(
        primary_key=True,
        max_length=100,
        validators=[RegexValidator(EVENT_TYPE_NAME, "Use dotted lower-case names such as 'message.received'.")],
    )
    description = models.TextField(blank=True)
    schema = models.JSONField(
        null=True, blank=True, help_text="JSON Schema (draft 2020-12) of the event data; extra fields are allowed."
    )
    schema_mode = models.CharField(
        max_length=8,
        choices=SchemaMode.choices,
        blank=True,
        default="",
        help_text="What publishing does with data that breaks the schema; empty: the deployment's "
        "WEBHOOKHUB_SCHEMA_MODE.",
    )
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
    # Deliveries to an ordered endpoint with the same key go one at a time, in publish order (see
    # deliveries.services.ordering); the publisher's, or empty (the catalog's path for the type may give one).
    ordering_key = models.CharField(max_length=200, null=True, blank=True)
    # Not a column: set by publishing on an event that goes out although its data broke its type's schema.
    breaks_schema = False

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="event_unique_idempotency_key",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="event_tenant_created"),
            models.Index(fields=["created_at"], name="event_created"),  # retention: the oldest first
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type_id}"


def _trigger_id() -> str:
    return new_id("trg")


class Trigger(models.Model):
    """A URL an external system POSTs JSON to, with its own API key; each request becomes an event.

    ``mapping`` maps paths in the incoming body (``contact.phone``, ``items[0].sku``) to fields
    of the event's data; ``identifier`` is a path every request must carry; ``ordering_key_path``,
    when set, a path whose value becomes the event's ordering key. Only a SHA-256 hash of the key is stored.
    """

    id = models.CharField(primary_key=True, max_length=40, default=_trigger_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="triggers")
    name = models.CharField(max_length=200)
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="triggers")
    enabled = models.BooleanField(default=True)
    key_prefix = models.CharField(max_length=16, editable=False)
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    sample = models.JSONField(default=dict, help_text="An example request body: the paths a mapping may use.")
    # The sample's paths in its own order, listed when it is saved (PostgreSQL's jsonb reorders keys).
    sample_paths = models.JSONField(default=list, editable=False)
    mapping = models.JSONField(default=dict, blank=True, help_text='{"path.in.body": "field_of_event_data"}')
    identifier = models.CharField(max_length=500, help_text="The path every request must carry, e.g. contact.phone.")
    ordering_key_path = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="A path in the request body whose value becomes the event's ordering key, e.g. conversation.id;"
        " empty: the event type's default.",
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; the deployment default when empty."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class TriggerOutcome(models.TextChoices):
    CAPTURED = "captured", "Captured"
    REJECTED = "rejected", "Rejected"


class TriggerRequest(models.Model):
    """One request a trigger received: when, from where, what came of it, and the start of the body."""

    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="requests")
    received_at = models.DateTimeField()
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=16, choices=TriggerOutcome.choices)
    detail = models.TextField(blank=True)
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    body_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["trigger", "-received_at"], name="trigger_request_recent"),
            models.Index(fields=["received_at"], name="trigger_request_age"),  # pruning
        ]

    def __str__(self) -> str:
        return f"{self.status_code} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class TriggerRateWindow(models.Model):
    """Requests a trigger took in its current one-minute window (one row per trigger, shared by all processes)."""

    trigger = models.OneToOneField(Trigger, primary_key=True, on_delete=models.CASCADE, related_name="+")
    minute = models.BigIntegerField()  # minutes since the epoch
    taken = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.taken} request(s) of {self.trigger_id} in minute {self.minute}"
