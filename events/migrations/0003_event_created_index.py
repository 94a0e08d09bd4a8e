from django.db import migrations, models

from ground.migration_ops import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    """Retention reads the oldest events first; built without locking out publishing on a large table."""

    atomic = False
    dependencies = [("events", "0002_triggers")]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="event",
            index=models.Index(fields=["created_at"], name="event_created"),
        ),
    ]
