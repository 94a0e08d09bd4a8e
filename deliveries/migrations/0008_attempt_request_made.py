from django.db import migrations, models


class Migration(migrations.Migration):
    """``reached`` said little: the column tells whether a request was made at all."""

    dependencies = [("deliveries", "0007_rollup_first_attempts")]

    operations = [
        migrations.RenameField(model_name="attempt", old_name="reached", new_name="request_made"),
        migrations.AlterField(
            model_name="attempt",
            name="request_made",
            field=models.BooleanField(
                default=True,
                help_text="False when no request was made (refused by the address policy, no signing secret).",
            ),
        ),
    ]
