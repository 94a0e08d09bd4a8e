from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts.models import Role
from accounts.services import create_api_key
from webhookhub.web.management.base import Command as BaseCommand
from webhookhub.web.management.base import one_line


class Command(BaseCommand):
    help = "Create an API key for a tenant; prints the key once, on the last line (only its hash is kept)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--role", default=Role.ADMIN, choices=Role.values)
        parser.add_argument("--name", default="")

    def handle(self, *args, tenant: str, role: str, name: str, **options):
        try:
            created = create_api_key(tenant=self.tenant(tenant), name=name, role=role)
        except ValidationError as exc:
            raise CommandError(one_line(exc)) from exc
        self.stdout.write(f"API key {created.api_key.prefix}... ({role}) for {tenant}; it is not shown again:")
        self.stdout.write(created.key)
