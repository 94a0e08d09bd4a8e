from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils import timezone

from subscriptions.certificates import expiry_warning
from subscriptions.models import AuthType, Endpoint, PayloadFormat, SignatureScheme, Verification
from subscriptions.payloads import heymarket_webhook_id
from subscriptions.selectors import public_keys
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
    "signature_scheme": "--signature-scheme",
    "tls_client_certificate": "--tls-client-certificate",
    "tls_client_key": "--tls-client-key",
    "tls_ca_certificate": "--tls-ca-certificate",
}
# --oauth2-* option -> key of the oauth2 auth object (--oauth2-token-url chooses oauth2)
OAUTH2_OPTIONS = {
    "oauth2_token_url": "token_url",
    "oauth2_client_id": "client_id",
    "oauth2_client_secret": "client_secret",
    "oauth2_scope": "scope",
    "oauth2_audience": "audience",
    "oauth2_client_auth": "client_auth",
}
TLS_FILES = {
    "tls_client_certificate": "--tls-client-certificate",
    "tls_client_key": "--tls-client-key",
    "tls_ca_certificate": "--tls-ca-certificate",
}


def _refusal(error: ValidationError) -> str:
    """The service's refusal in one line, naming the payload options as they are typed."""
    if hasattr(error, "error_dict") and set(error.message_dict) & set(PAYLOAD_OPTIONS):
        return "; ".join(
            f"{PAYLOAD_OPTIONS.get(field, field)}: {' '.join(messages)}"
            for field, messages in error.message_dict.items()
        )
    return one_line(error)


def _auth(options: dict[str, Any]) -> tuple[str, dict[str, str] | None]:
    """The auth type and values the options give (at most one kind: argparse refuses two; the other --oauth2-*
    options go only with --oauth2-token-url)."""
    oauth2 = {key: options[option] for option, key in OAUTH2_OPTIONS.items() if options[option] is not None}
    if oauth2 and options["oauth2_token_url"] is None:
        raise CommandError("--oauth2-* options need --oauth2-token-url (OAuth2 client credentials)")
    if options["oauth2_token_url"] is not None:
        return AuthType.OAUTH2, oauth2
    if options["bearer"]:
        return AuthType.BEARER, {"token": options["bearer"]}
    if options["api_key_header"]:
        header, sep, value = options["api_key_header"].partition(":")
        if not sep:
            raise CommandError("--api-key-header takes NAME:VALUE, e.g. X-API-Key:abc123")
        return AuthType.API_KEY, {"header": header.strip(), "value": value.strip()}
    if options["basic"]:
        username, sep, password = options["basic"].partition(":")
        if not sep:
            raise CommandError("--basic takes USER:PASSWORD")
        return AuthType.BASIC, {"username": username, "password": password}
    return AuthType.NONE, None


def _tls_files(options: dict[str, Any]) -> dict[str, str]:
    """The PEM text of the files the --tls-* options name (never printed)."""
    texts = {}
    for key, option in TLS_FILES.items():
        path = options[key]
        if path is None:
            continue
        try:
            with open(path, encoding="utf-8") as pem:
                texts[key] = pem.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise CommandError(f"{option}: cannot read {path}: {reason}") from exc
    return texts


class Command(BaseCommand):
    help = (
        "Add a webhook endpoint; prints its id, a Heymarket endpoint's verification token (once), a v1a endpoint's "
        "public key, and its signing secret (whsec_...) on the last line. Client secrets and keys are never printed."
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
        auth.add_argument(
            "--oauth2-token-url",
            metavar="URL",
            help="OAuth2 client credentials: the token endpoint (with --oauth2-client-id and --oauth2-client-secret)",
        )
        parser.add_argument("--oauth2-client-id", metavar="ID")
        parser.add_argument("--oauth2-client-secret", metavar="SECRET", help="stored encrypted, never printed")
        parser.add_argument("--oauth2-scope", metavar="SCOPE", help="optional")
        parser.add_argument("--oauth2-audience", metavar="AUDIENCE", help="optional")
        parser.add_argument(
            "--oauth2-client-auth",
            metavar="HOW",
            help="basic (client_secret_basic, the default) or post (client_secret_post)",
        )
        parser.add_argument(
            "--signature-scheme",
            default=SignatureScheme.V1.value,
            metavar="SCHEME",
            help="v1 (HMAC with the secret, the default), v1a (Ed25519: receivers verify with the public key) or both",
        )
        parser.add_argument(
            "--tls-client-certificate",
            metavar="PATH",
            help="PEM file: the client certificate presented to the https:// endpoint (with --tls-client-key)",
        )
        parser.add_argument(
            "--tls-client-key", metavar="PATH", help="PEM file: its private key, unencrypted (stored encrypted)"
        )
        parser.add_argument(
            "--tls-ca-certificate",
            metavar="PATH",
            help="PEM file: a private CA that alone verifies the endpoint's server certificate",
        )
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
        auth_type, auth = _auth(options)
        tls = _tls_files(options)
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
                signature_scheme=options["signature_scheme"],
                **tls,
            )
        except ValidationError as exc:
            raise CommandError(_refusal(exc)) from exc
        endpoint = created.endpoint
        ordered = " (ordered by key)" if endpoint.ordered else ""
        self.stdout.write(f"Endpoint {endpoint.pk} -> {endpoint.url} for {', '.join(endpoint.event_types)}{ordered}")
        self.stdout.write(endpoint.pk)
        if endpoint.payload_format != PayloadFormat.STANDARD:
            self.stdout.write(f"Payload format: {endpoint.payload_format}; verification: {endpoint.verification}")
        self._write_gateway_auth(endpoint)
        if created.verification_token:
            self.stdout.write(f"Heymarket webhook id: {heymarket_webhook_id(endpoint.pk)}")
            self.stdout.write("Verification token (shown once; Heymarket receivers find it in the body):")
            self.stdout.write(created.verification_token)
        self.stdout.write("Signing secret (shown once; receivers verify with it):")
        self.stdout.write(created.secret)

    def _write_gateway_auth(self, endpoint: Endpoint) -> None:
        """OAuth2's token URL and client id, the client certificate's expiry, and a v1a endpoint's public key:
        nothing secret."""
        if endpoint.auth_type == AuthType.OAUTH2:
            auth = endpoint.auth or {}
            self.stdout.write(f"Auth: OAuth2 client credentials at {auth['token_url']} as {auth['client_id']}")
        expires_at = endpoint.tls_client_certificate_expires_at
        if expires_at is not None:
            self.stdout.write(f"TLS client certificate expires {expires_at:%Y-%m-%d %H:%M} UTC")
            warning = expiry_warning(expires_at, now=timezone.now())
            if warning:
                self.stdout.write(f"Warning: {warning}")
        if endpoint.signature_scheme != SignatureScheme.V1:
            [primary, *_] = public_keys(endpoint, now=timezone.now())
            self.stdout.write(f"Signature scheme: {endpoint.signature_scheme}; public key (receivers verify with it):")
            self.stdout.write(primary.public_key)
