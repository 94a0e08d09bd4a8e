from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from subscriptions.models import AuthType
from subscriptions.services import create_endpoint
from webhookhub.web.management.base import Command as BaseCommand
from webhookhub.web.management.base import one_line


class Command(BaseCommand):
    help = "Add a webhook endpoint; prints its id, and its signing secret (whsec_...) on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--url", required=True)
        parser.add_argument(
            "--event-type", action="append", dest="event_types", metavar="TYPE", help="repeatable; default: every type"
        )
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--ordered", action="store_true", help="deliver the events of one ordering key one at a time, in order"
        )
        auth = parser.add_mutually_exclusive_group()
        auth.add_argument("--bearer", metavar="TOKEN")
        auth.add_argument("--api-key-header", metavar="NAME:VALUE")
        auth.add_argument("--basic", metavar="USER:PASSWORD")

    def handle(self, *args, **options):
        auth_type, auth = AuthType.NONE, None
        if options["bearer"]:
            auth_type, auth = AuthType.BEARER, {"token": options["bearer"]}
        elif options["api_key_header"]:
            header, sep, value = options["api_key_header"].partition(":")
            if not sep:
                raise CommandError("--api-key-header takes NAME:VALUE, e.g. X-API-Key:abc123")
            auth_type, auth = AuthType.API_KEY, {"header": header.strip(), "value": value.strip()}
        elif options["basic"]:
            username, sep, password = options["basic"].partition(":")
            if not sep:
                raise CommandError("--basic takes USER:PASSWORD")
            auth_type, auth = AuthType.BASIC, {"username": username, "password": password}
        try:
            created = create_endpoint(
                tenant=self.tenant(options["tenant"]),
                url=options["url"],
                event_types=options["event_types"] or ["*"],
                name=options["name"],
                auth_type=auth_type,
                auth=auth,
                ordered=options["ordered"],
            )
        except ValidationError as exc:
            raise CommandError(one_line(exc)) from exc
        endpoint = created.endpoint
        ordered = " (ordered by key)" if endpoint.ordered else ""
        self.stdout.write(f"Endpoint {endpoint.pk} -> {endpoint.url} for {', '.join(endpoint.event_types)}{ordered}")
        self.stdout.write(endpoint.pk)
        self.stdout.write("Signing secret (shown once; receivers verify with it):")
        self.stdout.write(created.secret)
