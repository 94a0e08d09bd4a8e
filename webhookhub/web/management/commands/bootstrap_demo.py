import secrets

from django.contrib.auth import get_user_model

from accounts.models import Role, Tenant
from accounts.services import add_member
from ground.conf import setting
from webhookhub.web.management.base import Command as BaseCommand


class Command(BaseCommand):
    help = "Create the demo tenant and its admin user (a new random password is printed) if they are missing."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="demo")
        parser.add_argument("--username", default="admin")
        parser.add_argument("--reset-password", action="store_true")

    def handle(self, *args, tenant: str, username: str, reset_password: bool, **options):
        demo, _ = Tenant.objects.get_or_create(slug=tenant, defaults={"name": "Demo tenant"})
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        password = None
        if user is None:
            password = secrets.token_urlsafe(12)
            user = user_model.objects.create_superuser(
                username=username, email=f"{username}@localhost", password=password
            )
        elif reset_password:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save(update_fields=["password"])
        add_member(tenant=demo, user=user, role=Role.ADMIN)
        if setting("ENCRYPTION_KEY_DERIVED"):
            self.stdout.write(
                "Note: WEBHOOKHUB_ENCRYPTION_KEY is not set; secrets are encrypted with a key derived from SECRET_KEY."
            )
        self.stdout.write(f"Demo tenant: {demo.slug} ({demo.pk})")
        if password:
            self.stdout.write(f"Admin user: {username}  password: {password}  (shown once)")
        else:
            self.stdout.write(f"Admin user: {username} (exists; --reset-password prints a new password)")
