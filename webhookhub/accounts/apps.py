from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "webhookhub.accounts"
    label = "accounts"
    verbose_name = "Tenants and access"

    def ready(self) -> None:
        from webhookhub import checks  # noqa: F401  (registers system checks)
