from django.db import migrations


def copy_health(apps, schema_editor):
    """Each endpoint's health row and its ``failing_since`` into the one record in subscriptions."""
    old = apps.get_model("deliveries", "EndpointHealth")
    new = apps.get_model("subscriptions", "EndpointHealth")
    endpoint = apps.get_model("subscriptions", "Endpoint")
    failing = dict(endpoint.objects.filter(failing_since__isnull=False).values_list("pk", "failing_since"))
    rows = {
        row.endpoint_id: new(
            endpoint_id=row.endpoint_id,
            last_attempt_at=row.last_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            consecutive_failures=row.consecutive_failures,
            last_success_at=row.last_success_at,
            failing_since=failing.get(row.endpoint_id),
        )
        for row in old.objects.iterator(chunk_size=2000)
    }
    for endpoint_id, since in failing.items():  # failing, yet no health row: keep the clock
        rows.setdefault(endpoint_id, new(endpoint_id=endpoint_id, last_attempt_at=since, failing_since=since))
    new.objects.bulk_create(rows.values(), batch_size=2000)


def copy_back(apps, schema_editor):
    old = apps.get_model("deliveries", "EndpointHealth")
    new = apps.get_model("subscriptions", "EndpointHealth")
    endpoint = apps.get_model("subscriptions", "Endpoint")
    for row in new.objects.iterator(chunk_size=2000):
        old.objects.create(
            endpoint_id=row.endpoint_id,
            last_attempt_at=row.last_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            consecutive_failures=row.consecutive_failures,
            last_success_at=row.last_success_at,
        )
        if row.failing_since is not None:
            endpoint.objects.filter(pk=row.endpoint_id).update(failing_since=row.failing_since)


class Migration(migrations.Migration):
    """``EndpointHealth`` moves to subscriptions and absorbs ``Endpoint.failing_since``: one health record."""

    dependencies = [
        ("deliveries", "0008_attempt_request_made"),
        ("subscriptions", "0004_endpoint_health"),
    ]
    run_before = [("subscriptions", "0005_remove_endpoint_failing_since")]

    operations = [
        migrations.RunPython(copy_health, copy_back),
        migrations.DeleteModel(name="EndpointHealth"),
    ]
