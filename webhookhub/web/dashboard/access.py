"""Who sees what on the dashboard: tenant admins their tenants, superusers every tenant; others 403."""

from dataclasses import dataclass
from functools import wraps
from typing import cast

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.urls import reverse

from accounts.access import tenant_named
from accounts.models import Tenant
from webhookhub.web.request_access import administered_tenants, is_tenant_admin


@dataclass(frozen=True)
class Scope:
    tenants: list[Tenant]  # every tenant the user administers: the tenant picker's choices
    chosen: Tenant | None  # picked with ?tenant=
    tenant_ids: list[str] | None  # the tenants in view; None means all (a superuser who picked none)

    @property
    def query(self) -> str:
        """The query string that keeps the chosen tenant on links."""
        return f"tenant={self.chosen.pk}" if self.chosen else ""


class ScopedRequest(HttpRequest):
    """A request that passed ``tenant_admin_required``: ``scope`` says which tenants it sees."""

    scope: Scope


def tenant_admin_required(view):
    """Anonymous: to the login page. Logged in but no tenant to administer: 403."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not is_tenant_admin(request):
            raise PermissionDenied("Only tenant admins can see the webhook dashboard.")
        cast(ScopedRequest, request).scope = resolve_scope(request)
        return view(request, *args, **kwargs)

    return guarded


def resolve_scope(request: HttpRequest) -> Scope:
    tenants = list(administered_tenants(request))
    wanted = request.GET.get("tenant", "")
    if not wanted:
        ids = None if request.user.is_superuser else [tenant.pk for tenant in tenants]
        return Scope(tenants=tenants, chosen=None, tenant_ids=ids)
    # Named by slug or id (the picker's links use the id), by the one rule of accounts.access.
    chosen = tenant_named(wanted, among=administered_tenants(request))
    if chosen is None:
        raise Http404("No such tenant.")
    return Scope(tenants=tenants, chosen=chosen, tenant_ids=[chosen.pk])
