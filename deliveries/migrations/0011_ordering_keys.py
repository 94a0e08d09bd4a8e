import django.db.models.deletion
from django.db import migrations, models

from ground.migration_ops import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    """Ordering keys: a keyed delivery's key and sequence (nullable columns: no table rewrite), the counters
    that give the sequences, and the index of pending keyed deliveries, built without locking out writes."""

    atomic = False
    dependencies = [
        ("deliveries", "0010_down_in_a_row"),
        ("events", "0004_event_ordering_key"),
        ("subscriptions", "0007_endpoint_ordered"),
    ]

    operations = [
        migrations.CreateModel(
            name="KeySequence",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=200)),
                ("last", models.PositiveBigIntegerField()),
                ("updated_at", models.DateTimeField()),
                (
                    "endpoint",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="key_sequences",
                        to="subscriptions.endpoint",
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("endpoint", "key"), name="key_sequence_unique")],
                "indexes": [models.Index(fields=["updated_at"], name="key_sequence_updated")],
            },
        ),
        migrations.AddField(
            model_name="delivery",
            name="ordering_key",
            field=models.CharField(blank=True, max_length=200, null=True),
        ),
        migrations.AddField(
            model_name="delivery",
            name="sequence",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("ordering_key__isnull", False), ("status", "pending")),
                fields=["endpoint", "ordering_key", "sequence"],
                name="delivery_pending_key",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("ordering_key__isnull", False)),
                fields=["ordering_key", "-created_at"],
                name="delivery_key_created",
            ),
        ),
    ]
