from datetime import datetime

from django.db import models
from django.db.models import Exists, OuterRef, Q

from accounts.models import Tenant
from events.models import Event
from ground.ids import new_id
from subscriptions.models import Endpoint


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # retries exhausted, or the endpoint said 410 Gone
    CANCELLED = "cancelled", "Cancelled"


def lease_held(now: datetime) -> Q:
    """A worker process holds the delivery: it claimed it (the claim takes only ``lease_until < now``)
    and renews the lease while the delivery waits in its lane or is being sent."""
    return Q(lease_until__gte=now)


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    """The questions asked of deliveries everywhere, each answered once."""

    def pending(self) -> "DeliveryQuerySet":
        return self.filter(status=DeliveryStatus.PENDING)

    def in_flight(self, now: datetime) -> "DeliveryQuerySet":
        """Pending and held by a worker: being sent, or waiting for its turn in the worker's lane."""
        return self.pending().filter(lease_held(now))

    def not_in_flight(self, now: datetime) -> "DeliveryQuerySet":
        return self.exclude(lease_held(now))

    def due_unowned(self, now: datetime) -> "DeliveryQuerySet":
        """Pending, due, and held by no worker: what a claim may take now, but for ``free_to_go``."""
        return self.pending().not_in_flight(now).filter(next_attempt_at__lte=now)

    def free_to_go(self, now: datetime) -> "DeliveryQuerySet":
        """Leaves out keyed deliveries of ordered endpoints that wait for another of their ordering key: one before
        it is pending, or one of the key is being sent (the claims' rule, ``deliveries.services.ordering``)."""
        ahead = (
            Delivery.objects.pending()
            .filter(endpoint_id=OuterRef("endpoint_id"), ordering_key=OuterRef("ordering_key"))
            .exclude(pk=OuterRef("pk"))
            .filter(Q(sequence__lt=OuterRef("sequence")) | lease_held(now))
        )
        return self.exclude(Q(ordering_key__isnull=False, endpoint__ordered=True) & Exists(ahead))


def _payload_id() -> str:
    return new_id("pl")


class Payload(models.Model):
    """A body some deliveries of an event send instead of the event's own (``Event.body``): one per distinct
    payload shape among the endpoints the event went to (``subscriptions.payloads``; a Heymarket body carries
    its endpoint's webhook id, so each Heymarket endpoint has its own), fixed when they are created, so every
    retry sends the same bytes whatever happens to the endpoint's shape later. The one exception is a Heymarket
    verification token, the endpoint's credential: the body holds its slot, filled in at each attempt."""

    id = models.CharField(primary_key=True, max_length=40, default=_payload_id, editable=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    body = models.TextField()

    def __str__(self) -> str:
        return f"payload {self.pk} of {self.event_id}"


class Delivery(models.Model):
    """One event to one endpoint. Retries wait here, in ``next_attempt_at``, not in the broker.

    ``lease_until`` at or after now means a worker process holds the delivery (see ``lease_held``);
    it renews the lease while it holds it. If the process dies the lease runs out and any worker
    may claim the delivery again.
    """

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Set only for an ordered endpoint's deliveries of keyed events: the key, and the delivery's place among
    # the endpoint's deliveries with that key (1, 2, 3...; see deliveries.services.ordering).
    ordering_key = models.CharField(max_length=200, null=True, blank=True)
    sequence = models.PositiveBigIntegerField(null=True, blank=True)
    # The body it sends when its endpoint has a payload shape; empty: the event's standard envelope. A payload
    # goes only with its event, as the delivery does (retention deletes the deliveries first): no constraint
    # and no index, which every publish would maintain for nothing.
    payload = models.ForeignKey(
        Payload,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    # Not a column: the lease this process was granted when it claimed the delivery (set in memory).
    claimed_lease: datetime | None

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_next"),
            # The scheduler's walk over endpoints with pending work, and each endpoint's due deliveries.
            models.Index(
                fields=["endpoint", "next_attempt_at"],
                name="delivery_pending_endpoint",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_created"),
            models.Index(fields=["-created_at", "-id"], name="delivery_created"),  # the log, newest first
            # A keyed delivery waits for the pending ones before it with its key (only keyed rows are in it).
            models.Index(
                fields=["endpoint", "ordering_key", "sequence"],
                name="delivery_pending_key",
                condition=models.Q(status="pending", ordering_key__isnull=False),
            ),
            # The log filtered by an ordering key (only keyed rows are in it).
            models.Index(
                fields=["ordering_key", "-created_at"],
                name="delivery_key_created",
                condition=models.Q(ordering_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.event_id} to {self.endpoint_id}"

    def sent_body(self) -> str:
        """What it sends, on every attempt: its payload's body, or its event's (a Heymarket token slot is filled
        in when the request is built)."""
        return self.payload.body if self.payload is not None else self.event.body


class AttemptOutcome(models.TextChoices):
    SUCCESS = "success", "Success"
    RETRY = "retry", "Will retry"
    FAIL = "fail", "Failed"


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    request_headers = models.JSONField(default=dict)  # secrets masked
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict)
    response_body = models.TextField(blank=True)  # first STORED_RESPONSE_BYTES
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    request_made = models.BooleanField(
        default=True, help_text="False when no request was made (refused by the address policy, no signing secret)."
    )

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"


# Upper bounds (ms) of the latency histogram's buckets; one more bucket holds everything slower.
LATENCY_BOUNDS_MS = (5, 10, 15, 25, 40, 60, 100, 150, 250, 400, 600, 1000, 1500, 2500, 4000, 6000, 10000, 15000)
LATENCY_COLUMNS = tuple(f"latency_{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1))


class Granularity(models.IntegerChoices):
    FIVE_MINUTES = 300, "5 minutes"
    HOUR = 3600, "1 hour"


class AttemptRollup(models.Model):
    """The attempts of one endpoint in one time bucket: counts by outcome and a latency histogram.

    Written by the recorder with every batch of attempts (an upsert that adds), so the
    dashboard reads a few thousand rows instead of millions of attempts. Five-minute
    buckets serve the last hours and are pruned after two days, hourly ones after 90 days.
    ``latency_NN`` counts attempts that got a response within ``LATENCY_BOUNDS_MS[NN]``.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="rollups")
    granularity = models.PositiveIntegerField(choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    successes = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    responses = models.PositiveIntegerField(default=0)  # attempts with an HTTP status: the histogram's total
    first_attempts = models.PositiveIntegerField(default=0)  # attempts number 1
    first_successes = models.PositiveIntegerField(default=0)  # attempts number 1 that succeeded

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "granularity", "bucket_start"], name="rollup_unique_bucket")
        ]
        indexes = [
            models.Index(fields=["tenant", "granularity", "bucket_start"], name="rollup_tenant_bucket"),
            models.Index(fields=["granularity", "bucket_start"], name="rollup_bucket"),  # all tenants; pruning
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id} from {self.bucket_start:%Y-%m-%d %H:%M} ({self.granularity} s)"

    def latency_counts(self) -> list[int]:
        return [getattr(self, column) for column in LATENCY_COLUMNS]


for _column in LATENCY_COLUMNS:
    AttemptRollup.add_to_class(_column, models.PositiveIntegerField(default=0))


class SweepTurn(models.Model):
    """When the next sweep may run. Beat and every worker process try once an interval; the one
    ``UPDATE`` that moves ``next_sweep_at`` picks which of them sweeps, so sweepers do not multiply
    the database's work and any one of them keeps retries going."""

    name = models.CharField(max_length=32, primary_key=True)
    next_sweep_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: next at {self.next_sweep_at:%H:%M:%S}"


class EndpointSchedule(models.Model):
    """The scheduler's state of one endpoint, shared by every worker on every host.

    One worker process at a time owns the endpoint (``owner``, until ``owned_until`` unless
    its heartbeat renews it): only the owner leases and sends the endpoint's deliveries, so
    its in-memory counters hold ``max_in_flight`` and ``rate_limit_per_s`` for the cluster.
    The owner hands the endpoint back once everything it leased is recorded; if it dies, its
    ownership lapses together with its send leases.
    """

    endpoint = models.OneToOneField(Endpoint, primary_key=True, on_delete=models.CASCADE, related_name="schedule")
    owner = models.CharField(max_length=200, blank=True)  # "host:pid:nonce" of the owning worker process
    owned_until = models.DateTimeField(null=True, blank=True)
    last_claim_at = models.DateTimeField(null=True, blank=True)  # round robin: the longest unserved goes first
    next_start_at = models.DateTimeField(null=True, blank=True)  # rate limit: where the last owner left it
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=200, blank=True)
    # Requests in a row that found the endpoint down (refused, timed out, 5xx): the circuit opens at
    # CIRCUIT_THRESHOLD. Not EndpointHealth.failed_in_a_row, which counts every attempt that did not succeed.
    down_in_a_row = models.PositiveIntegerField(default=0)
    circuit_opened_at = models.DateTimeField(null=True, blank=True)
    next_probe_at = models.DateTimeField(null=True, blank=True)
    # Adaptive concurrency (deliveries.adaptive), as the owner last wrote it: requests it lets open at once
    # (empty: not learnt yet), and what held it down: the kind of answer ("429", "timeout", "latency"...) and
    # how many requests were open when it came.
    concurrency_limit = models.PositiveSmallIntegerField(null=True, blank=True)
    concurrency_limited_by = models.CharField(max_length=16, blank=True)
    concurrency_limited_at = models.PositiveSmallIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"schedule of {self.endpoint_id}"


class KeySequence(models.Model):
    """The last sequence number given to an ordered endpoint's deliveries with one ordering key.

    Taken by the publishing transaction (an upsert that locks this row until it commits), so the
    deliveries of one key get 1, 2, 3... in the order their publishes commit, and a claim that sees
    a delivery sees every one before it.
    """

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="key_sequences")
    key = models.CharField(max_length=200)
    last = models.PositiveBigIntegerField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "key"], name="key_sequence_unique")]
        indexes = [models.Index(fields=["updated_at"], name="key_sequence_updated")]  # retention: idle keys

    def __str__(self) -> str:
        return f"{self.key} on {self.endpoint_id}: {self.last}"


TOTAL_SHARDS = 16  # rows per tenant in each totals table; a database connection adds to one of them


class PublishTotal(models.Model):
    """Events published and deliveries created since the beginning, per tenant: /metrics' publish counters.

    Counted by the statement (or transaction) that publishes, so the numbers are exact whichever
    process published, and survive restarts. Each database connection adds to its own shard
    (backend pid modulo ``TOTAL_SHARDS`` on PostgreSQL), so concurrent publishers do not queue on
    one row. ``tenant_id`` is not a foreign key: a deleted tenant's totals stay, so counters never
    go down, and retention never touches these rows.
    """

    tenant_id = models.CharField(max_length=40)
    shard = models.PositiveSmallIntegerField()
    events = models.BigIntegerField(default=0)
    deliveries = models.BigIntegerField(default=0)
    schema_violations = models.BigIntegerField(default=0)  # events published although their data broke the schema

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "shard"], name="publish_total_unique_shard")]

    def __str__(self) -> str:
        return f"publish totals of {self.tenant_id} ({self.shard})"


class AttemptTotal(models.Model):
    """Attempts recorded since the beginning, per tenant: /metrics' attempt counters and duration histogram.

    Added to by the recorder in the transaction that inserts the attempts (like the rollups), so
    the counters match the attempt log exactly and outlive retention. Sharded and keyed like
    ``PublishTotal``. The histogram counts attempts that made a request (``request_made``):
    ``latency_NN`` within ``LATENCY_BOUNDS_MS[NN]``, ``duration_ms_sum`` their total time.
    """

    tenant_id = models.CharField(max_length=40)
    shard = models.PositiveSmallIntegerField()
    succeeded = models.BigIntegerField(default=0)
    retrying = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(default=0)
    duration_ms_sum = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "shard"], name="attempt_total_unique_shard")]

    def __str__(self) -> str:
        return f"attempt totals of {self.tenant_id} ({self.shard})"

    def latency_counts(self) -> list[int]:
        return [getattr(self, column) for column in LATENCY_COLUMNS]


for _column in LATENCY_COLUMNS:
    AttemptTotal.add_to_class(_column, models.BigIntegerField(default=0))
