from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0003_event_created_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='event',
            name='ordering_key',
            field=models.CharField(blank=True, max_length=200, null=True),
        ),
    ]
