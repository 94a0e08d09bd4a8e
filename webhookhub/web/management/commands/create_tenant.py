from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts.services import create_tenant
from webhookhub.web.management.base import Command as BaseCommand
from webhookhub.web.management.base import one_line


class Command(BaseCommand):
    help = "Create a tenant; prints its id on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")

    def handle(self, *args, slug: str, name: str, **options):
        try:
            tenant = create_tenant(slug=slug, name=name)
        except ValidationError as exc:
            raise CommandError(one_line(exc)) from exc
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name})")
        self.stdout.write(tenant.pk)
