from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from subscriptions.models import AuthType, PayloadFormat, Verification
from subscriptions.payloads import heymarket_webhook_id
from subscriptions.services import create_endpoint
from subscriptions.validation import retry_schedule_names
from webhookhub.web.management.base import Command as BaseCommand
from webhookhub.web.management.base import one_line
from webhookhub.web.retry_schedule_text import parse_retry_schedule

# service error key -> option
PAYLOAD_OPTIONS = {
    "payload_format": "--payload-format",
    "payload_shape": "--payload-shape",
    "verification": "--verification",
    "retry_schedule": "--retry-schedule",
    "auto_disable_after_seconds": "--auto-disable-after",
    "max_in_flight": "--max-in-flight",
}


def _refusal(error: ValidationError) -> str:
    """The service's refusal in one line, naming the payload options as they are typed."""
    if hasattr(error, "error_dict") and set(error.message_dict) & set(PAYLOAD_OPTIONS):
        return "; ".join(
            f"{PAYLOAD_OPTIONS.get(field, field)}: {' '.join(messages)}"
            for field, messages in error.message_dict.items()
        )
    return one_line(error)


class Command(BaseCommand):
    help = (
        "Add a webhook endpoint; prints its id, a Heymarket endpoint's verification token (once), and its signing "
        "secret (whsec_...) on the last line."
    )

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
        parser.add_argument(
            "--payload-format",
            default=PayloadFormat.STANDARD.value,
            metavar="FORMAT",
            help=f"the body it receives: {', '.join(PayloadFormat.values)} (default: standard)",
        )
        parser.add_argument(
            "--payload-shape",
            default="",
            metavar="JMESPATH",
            help="with --payload-format custom: a JMESPath expression over {id, type, timestamp, tenant_id, data} "
            "giving a JSON object, e.g. '{event: type, payload: data}'",
        )
        parser.add_argument(
            "--verification",
            metavar="HOW",
            help=f"{', '.join(Verification.values)}; default: both for heymarket, signature otherwise",
        )
        parser.add_argument(
            "--retry-schedule",
            metavar="SCHEDULE",
            help="seconds to wait after each failed attempt, comma-separated (10,60,600 or 10s,5m,2h,1d), the name "
            "of a schedule the operator defines, or none for a single attempt; default: the deployment's",
        )
        parser.add_argument(
            "--max-in-flight", type=int, metavar="N", help="requests open at once at most (the ceiling); default 8"
        )
        parser.add_argument(
            "--fixed-concurrency",
            action="store_true",
            help="always up to --max-in-flight at once, instead of adapting to the endpoint's answers",
        )
        parser.add_argument(
            "--auto-disable-after",
            metavar="SECONDS",
            type=int,
            help="disable the endpoint after it has failed this long without a success; default: the deployment's",
        )

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
        payload_format, verification = options["payload_format"], options["verification"]
        if payload_format not in PayloadFormat.values:
            raise CommandError(
                f"--payload-format takes one of {', '.join(PayloadFormat.values)}, not {payload_format!r}"
            )
        if verification is not None and verification not in Verification.values:
            raise CommandError(f"--verification takes one of {', '.join(Verification.values)}, not {verification!r}")
        try:
            retry_schedule = parse_retry_schedule(options["retry_schedule"] or "", retry_schedule_names())
        except ValidationError as exc:
            raise CommandError(f"--retry-schedule: {one_line(exc)}") from exc
        try:
            created = create_endpoint(
                tenant=self.tenant(options["tenant"]),
                url=options["url"],
                event_types=options["event_types"] or ["*"],
                name=options["name"],
                auth_type=auth_type,
                auth=auth,
                ordered=options["ordered"],
                payload_format=payload_format,
                payload_shape=options["payload_shape"],
                verification=verification,
                retry_schedule=retry_schedule,
                auto_disable_after_seconds=options["auto_disable_after"],
                max_in_flight=options["max_in_flight"],
                adaptive_concurrency=not options["fixed_concurrency"],
            )
        except ValidationError as exc:
            raise CommandError(_refusal(exc)) from exc
        endpoint = created.endpoint
        ordered = " (ordered by key)" if endpoint.ordered else ""
        self.stdout.write(f"Endpoint {endpoint.pk} -> {endpoint.url} for {', '.join(endpoint.event_types)}{ordered}")
        self.stdout.write(endpoint.pk)
        if endpoint.payload_format != PayloadFormat.STANDARD:
            self.stdout.write(f"Payload format: {endpoint.payload_format}; verification: {endpoint.verification}")
        if created.verification_token:
            self.stdout.write(f"Heymarket webhook id: {heymarket_webhook_id(endpoint.pk)}")
            self.stdout.write("Verification token (shown once; Heymarket receivers find it in the body):")
            self.stdout.write(created.verification_token)
        self.stdout.write("Signing secret (shown once; receivers verify with it):")
        self.stdout.write(created.secret)
