from django.db import migrations, models

from ground.migration_ops import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    """The log's newest-first index, built without locking out writes on a large deliveries table."""

    atomic = False
    dependencies = [("deliveries", "0002_dashboard_stats")]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="delivery",
            index=models.Index(fields=["-created_at", "-id"], name="delivery_created"),
        ),
    ]
