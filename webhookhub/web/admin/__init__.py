"""The Django admin of deliveries, events and endpoints (Django's autodiscovery imports this package)."""

from webhookhub.web.admin import delivery_admin, endpoint_admin  # noqa: F401 (each registers its ModelAdmins)
