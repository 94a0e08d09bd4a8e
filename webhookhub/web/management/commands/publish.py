import json

from django.core.management.base import CommandError

from deliveries.services.publishing import publish
from events.exceptions import PublishError
from webhookhub.web.management.base import Command as BaseCommand


class Command(BaseCommand):
    help = "Publish one event; prints the event id on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("type", help="event type, e.g. message.received")
        parser.add_argument("data", help="the event data as a JSON object")
        parser.add_argument("--idempotency-key", default=None)
        parser.add_argument(
            "--ordering-key", default=None, help="ordered endpoints get the events of one key one at a time, in order"
        )

    def handle(
        self, *args, tenant: str, type: str, data: str, idempotency_key: str | None, ordering_key: str | None, **options
    ):
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise CommandError(f"The data is not valid JSON: {exc}") from exc
        try:
            event = publish(
                tenant=self.tenant(tenant),
                type=type,
                data=payload,
                idempotency_key=idempotency_key,
                ordering_key=ordering_key,
            )
        except PublishError as exc:
            raise CommandError(str(exc)) from exc
        count = event.deliveries.count()
        self.stdout.write(f"Published {event.event_type_id} to {count} endpoint(s)")
        self.stdout.write(event.id)
