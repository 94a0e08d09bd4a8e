from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0004_event_ordering_key'),
    ]

    operations = [
        migrations.AddField(
            model_name='trigger',
            name='ordering_key_path',
            field=models.CharField(blank=True, default='', help_text="A path in the request body whose value becomes the event's ordering key, e.g. conversation.id; empty: the event type's default.", max_length=500),
        ),
    ]
