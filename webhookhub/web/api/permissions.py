from rest_framework.permissions import BasePermission

from webhookhub.web.api.tenancy import resolve_access


class IsTenantAdmin(BasePermission):
    """Authenticated, and an admin of the tenant the request acts for (sets ``request.access``)."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        request.access = resolve_access(request)
        return True


class IsPlatformStaff(BasePermission):
    """Platform superusers (e.g. to add custom event types)."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and getattr(request.user, "is_superuser", False))
