from django.db import migrations


class Migration(migrations.Migration):
    """The health record's streak gets a name that says what it counts (a rename: no data changes)."""

    dependencies = [("subscriptions", "0005_remove_endpoint_failing_since")]

    operations = [
        migrations.RenameField(model_name="endpointhealth", old_name="consecutive_failures", new_name="failed_in_a_row"),
    ]
