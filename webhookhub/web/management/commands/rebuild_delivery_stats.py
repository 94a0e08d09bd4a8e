from deliveries.numbers.maintenance import rebuild_stats
from webhookhub.web.management.base import Command as BaseCommand


class Command(BaseCommand):
    help = "Recompute the dashboard's rollups and endpoint health from the attempt log."

    def handle(self, *args, **options):
        self.stdout.write(f"Rebuilt the dashboard's numbers from {rebuild_stats()} attempt(s).")
