from django.core.management.base import CommandError
from django.utils import timezone

from deliveries.services.retention import Purged, count_purgeable, purge, retention_cutoff
from webhookhub.web.management.base import Command as BaseCommand


def _busy(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise CommandError(f"--busy must be a whole percentage from 1 to 100, not {value!r}.")
    return int(value)


def _days(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise CommandError(f"--older-than must be a positive whole number of days, not {value!r}.")
    return int(value)


class Command(BaseCommand):
    help = (
        "Delete events older than DAYS whose deliveries are all finished, with their deliveries and attempts. "
        "Pending and in-flight deliveries (and their events) are never deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, metavar="DAYS", help="age in days (a positive number)")
        parser.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant's events")
        parser.add_argument(
            "--busy",
            default="50",
            metavar="PERCENT",
            help="share of the time spent deleting (default 50): it pauses the rest, so publishing and "
            "sending keep their share of the database; 100 deletes flat out",
        )

    def handle(self, *args, older_than: str, dry_run: bool, tenant: str | None, busy: str, **options):
        days = _days(older_than)
        busy_share = _busy(busy) / 100
        scope = self.tenant(tenant) if tenant else None
        before = retention_cutoff(now=timezone.now(), days=days)
        planned = count_purgeable(before=before, tenant=scope)
        what = f"{planned.events} event(s), {planned.deliveries} delivery(ies), {planned.attempts} attempt(s)"
        if dry_run:
            self.stdout.write(f"Would delete {what} older than {days} day(s). Nothing was deleted (dry run).")
            return
        on_a_terminal = self.stdout.isatty()

        def progress(done: Purged) -> None:
            line = f"purged {done.events} of {planned.events} event(s)"
            if on_a_terminal:
                self.stdout.write(f"\r{_bar(done.events, planned.events)} {line}", ending="")
                self.stdout.flush()
            else:
                self.stdout.write(line)

        done = purge(before=before, tenant=scope, on_batch=progress, busy_share=busy_share)
        if on_a_terminal and done.events:
            self.stdout.write("")
        self.stdout.write(
            f"Deleted {done.events} event(s), {done.deliveries} delivery(ies), {done.attempts} attempt(s) "
            f"older than {days} day(s)."
        )


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width if not total else min(width, width * done // total)
    return "[" + "#" * filled + "." * (width - filled) + "]"
