from django.db import migrations


class Migration(migrations.Migration):
    """The auto-disable clock lives in ``EndpointHealth.failing_since`` now (copied by deliveries' 0009,
    which runs before this one)."""

    dependencies = [("subscriptions", "0004_endpoint_health")]

    operations = [migrations.RemoveField(model_name="endpoint", name="failing_since")]
