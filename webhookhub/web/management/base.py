"""The base of the management commands: bad arguments and CommandError are one line on stderr, exit non-zero."""

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


def one_line(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)


class Command(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any):
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str) -> None:
            sys.stderr.write(f"Error: {message} (see: manage.py {subcommand} --help)\n")
            sys.exit(2)

        parser.error = error  # type: ignore[method-assign]  # argparse's documented way to change the message
        return parser

    def tenant(self, slug: str):
        from accounts.access import tenant_named

        tenant = tenant_named(slug)
        if tenant is None:
            raise CommandError(f"No tenant with slug {slug!r}; create it with: manage.py create_tenant {slug}")
        return tenant
