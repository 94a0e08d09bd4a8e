"""The Django admin of every app (Django's autodiscovery imports this package; each module registers its
ModelAdmins), with the tenant scoping they share (``scoping``) and the form fields of their forms (``fields``)."""

from webhookhub.web.admin import (  # noqa: F401 (imported for their registrations)
    api_key_admin,
    delivery_admin,
    endpoint_admin,
    event_admin,
    event_type_admin,
    tenant_admin,
)
from webhookhub.web.triggers import admin as trigger_admin  # noqa: F401 (registers the Trigger admins)
