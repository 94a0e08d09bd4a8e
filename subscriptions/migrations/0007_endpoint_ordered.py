from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('subscriptions', '0006_failed_in_a_row'),
    ]

    operations = [
        migrations.AddField(
            model_name='endpoint',
            name='ordered',
            field=models.BooleanField(default=False, help_text='Events with the same ordering key are delivered one at a time, in publish order: each waits until the one before it succeeded, failed for good or was cancelled.'),
        ),
    ]
