from django.db import migrations


class Migration(migrations.Migration):
    """The circuit's streak gets a name that says what it counts (a rename: no data changes)."""

    dependencies = [("deliveries", "0009_endpoint_health_moved")]

    operations = [
        migrations.RenameField(model_name="endpointschedule", old_name="consecutive_failures", new_name="down_in_a_row"),
    ]
