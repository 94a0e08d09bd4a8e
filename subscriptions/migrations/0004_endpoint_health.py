import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """One health record per endpoint: the recorder's health row moves here from deliveries and takes
    over ``Endpoint.failing_since`` (deliveries' 0009 copies the rows; 0005 drops the old column)."""

    dependencies = [("subscriptions", "0003_labels")]

    operations = [
        migrations.CreateModel(
            name="EndpointHealth",
            fields=[
                (
                    "endpoint",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="health",
                        serialize=False,
                        to="subscriptions.endpoint",
                    ),
                ),
                ("last_attempt_at", models.DateTimeField()),
                ("last_status_code", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True)),
                ("consecutive_failures", models.PositiveIntegerField(default=0)),
                ("last_success_at", models.DateTimeField(blank=True, null=True)),
                (
                    "failing_since",
                    models.DateTimeField(
                        blank=True,
                        help_text="First failed request since the last success or since an admin enabled the "
                        "endpoint; the endpoint is disabled when this is older than the auto-disable period.",
                        null=True,
                    ),
                ),
            ],
            options={"verbose_name_plural": "endpoint health"},
        ),
    ]
