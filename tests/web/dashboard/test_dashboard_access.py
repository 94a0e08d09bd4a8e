"""Who may use the dashboard: a tenant's admins and superusers. Everyone else is refused and changes nothing."""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from deliveries.models import DeliveryStatus
from tests.factories import MembershipFactory, delivery_to, endpoint_for, make_user
from tests.support.clients import member_client
from tests.support.db import db_state
from tests.support.recording import record
from tests.web.dashboard.support import FORM_TIME, keyed_deliveries, listed, page, published_ago, section, url

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Route:
    id: str
    name: str
    method: str = "get"
    target: str | None = None  # "delivery" or "endpoint": the route takes that object's id
    data: dict = field(default_factory=dict)  # "range": True adds a replay range covering the last day
    allowed: int = 200  # the status a tenant admin gets

    @property
    def acts(self) -> bool:
        """Whether the route changes rows when allowed (the preview of a replay only counts)."""
        return self.method == "post" and self.id != "replay-preview"

    def path(self, world: dict) -> str:
        return url(self.name, world[self.target].pk) if self.target else url(self.name)

    def call(self, client: Client, world: dict, query: str = "", method: str | None = None):
        data = dict(self.data)
        if data.pop("range", False):
            data.update(_replay_range())
        path = self.path(world) + (f"?{query}" if query else "")
        return getattr(client, method or self.method)(path, data if (method or self.method) == "post" else None)


def _replay_range() -> dict:
    now = timezone.now()
    return {
        "since": (now - timedelta(days=1)).strftime(FORM_TIME),
        "until": (now + timedelta(hours=1)).strftime(FORM_TIME),
    }


ROUTES = [
    Route("overview", "overview"),
    Route("deliveries", "deliveries"),
    Route("delivery", "delivery", target="delivery"),
    Route("endpoint", "endpoint", target="endpoint"),
    Route("endpoint-preview", "endpoint_preview", target="endpoint"),
    Route("event-types", "event_types"),
    Route("resend", "delivery_resend", "post", "delivery", allowed=302),
    Route("cancel", "delivery_cancel", "post", "delivery", allowed=302),
    Route("test-event", "endpoint_test", "post", "endpoint", allowed=302),
    Route("disable", "endpoint_toggle", "post", "endpoint", {"enabled": "0"}, allowed=302),
    Route("replay-preview", "endpoint_replay", "post", "endpoint", {"which": "all", "range": True}),
    Route(
        "replay-confirm",
        "endpoint_replay",
        "post",
        "endpoint",
        {"which": "all", "range": True, "confirm": "True"},
        allowed=302,
    ),
]
POST_ROUTES = [route for route in ROUTES if route.method == "post"]
OBJECT_ROUTES = [route for route in ROUTES if route.target]


def _ids(routes):
    return [route.id for route in routes]


@pytest.fixture
def world(tenant):
    """An endpoint of ``tenant`` with a delivery waiting for its retry (the one acted on) and a failed one."""
    endpoint = endpoint_for(tenant, name="orders of the tenant")
    in_an_hour = timezone.now() + timedelta(hours=1)
    waiting = delivery_to(endpoint, attempt_count=2, next_attempt_at=in_an_hour, last_status_code=500)
    failed = delivery_to(
        endpoint, status=DeliveryStatus.FAILED, attempt_count=8, next_attempt_at=None, completed_at=timezone.now()
    )
    return {"endpoint": endpoint, "delivery": waiting, "failed": failed}


def _refused_and_unchanged(route: Route, world: dict, client: Client, status: int, query: str = "") -> None:
    before = db_state()
    response = route.call(client, world, query)
    assert response.status_code == status
    assert db_state() == before


# --- anonymous ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_anonymous_visitors_are_sent_to_the_admin_login_and_change_nothing(world, route):
    before = db_state()

    response = route.call(Client(), world)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={route.path(world)}"
    assert db_state() == before


# --- logged in, wrong method ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", POST_ROUTES, ids=_ids(POST_ROUTES))
def test_a_get_of_an_action_gives_405_and_changes_nothing(world, tenant_admin, route):
    before = db_state()

    response = route.call(tenant_admin, world, method="get")

    assert response.status_code == 405
    assert db_state() == before


# --- members who are not admins -------------------------------------------------------------------------


@pytest.mark.parametrize("staff", [True, False], ids=["staff", "not-staff"])
@pytest.mark.parametrize("role", [Role.MANAGER, Role.USER])
@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_managers_and_users_of_the_tenant_get_403_and_change_nothing(world, tenant, route, role, staff):
    _refused_and_unchanged(route, world, member_client(tenant, role, is_staff=staff), 403)


# --- admins of another tenant ----------------------------------------------------------------------------


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=_ids(OBJECT_ROUTES))
def test_an_admin_of_another_tenant_gets_404_for_this_tenants_objects_and_changes_nothing(world, other_admin, route):
    _refused_and_unchanged(route, world, other_admin, 404)


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_an_admin_of_another_tenant_cannot_pick_this_tenant(world, tenant, other_admin, route):
    _refused_and_unchanged(route, world, other_admin, 404, query=f"tenant={tenant.pk}")


def test_the_overview_of_a_tenant_admin_does_not_show_another_tenants_endpoints(tenant, other_tenant, tenant_admin):
    endpoint_for(tenant, name="orders of the tenant")
    endpoint_for(other_tenant, name="payroll of the other tenant")

    response = tenant_admin.get(url("overview"))

    assert response.status_code == 200
    assert "orders of the tenant" in section(response, "endpoint-health")
    assert "payroll of the other tenant" not in page(response)


def test_the_overview_numbers_of_a_tenant_admin_leave_out_another_tenants_attempts(tenant, other_tenant, tenant_admin):
    record([delivery_to(endpoint_for(tenant))])
    record([delivery_to(endpoint_for(other_tenant)) for _ in range(3)], status=500)

    response = tenant_admin.get(url("overview"))

    assert '<div class="value" id="kpi-attempts">1</div>' in response.content.decode()
    assert '<div class="value" id="kpi-success-rate">100%</div>' in response.content.decode()


def test_the_log_does_not_list_another_tenants_deliveries(tenant, other_tenant, tenant_admin):
    own = delivery_to(endpoint_for(tenant))
    delivery_to(endpoint_for(other_tenant, name="payroll of the other tenant"))

    response = tenant_admin.get(url("deliveries"))

    assert listed(response) == [own.pk]
    assert "payroll of the other tenant" not in page(response)


def test_an_endpoint_of_another_tenant_is_not_a_filter_choice_of_the_log(tenant, other_tenant, tenant_admin):
    delivery_to(endpoint_for(tenant))
    theirs = delivery_to(endpoint_for(other_tenant))

    response = tenant_admin.get(url("deliveries", endpoint=theirs.endpoint_id))

    assert response.status_code == 200
    assert "Select a valid choice." in page(response)
    assert listed(response) == []


def test_an_admin_who_is_only_a_manager_of_this_tenant_gets_404_for_its_objects(world, tenant, other_tenant):
    user = make_user(is_staff=True)
    MembershipFactory(user=user, tenant=other_tenant, role=Role.ADMIN)
    MembershipFactory(user=user, tenant=tenant, role=Role.MANAGER)
    client = Client()
    client.force_login(user)

    assert client.get(url("delivery", world["delivery"].pk)).status_code == 404
    assert client.get(url("endpoint", world["endpoint"].pk)).status_code == 404
    assert client.get(url("overview", tenant=tenant.pk)).status_code == 404


def test_a_tenant_that_does_not_exist_cannot_be_picked(world, tenant_admin):
    assert tenant_admin.get(url("overview", tenant="ten_does_not_exist")).status_code == 404


@pytest.mark.parametrize("route", POST_ROUTES, ids=_ids(POST_ROUTES))
def test_an_action_posted_without_the_csrf_token_is_refused_and_changes_nothing(world, tenant, route):
    user = make_user(is_staff=True)
    MembershipFactory(user=user, tenant=tenant, role=Role.ADMIN)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    _refused_and_unchanged(route, world, client, 403)


# --- let in ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["tenant admin", "superuser"])
@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_tenant_admins_and_superusers_are_let_in(world, tenant_admin, superuser, route, who):
    client = tenant_admin if who == "tenant admin" else superuser
    before = db_state()

    response = route.call(client, world)

    assert response.status_code == route.allowed
    assert (db_state() != before) == route.acts  # so "unchanged" above means refused, not ineffective


@pytest.mark.parametrize("who", ["tenant admin", "superuser"])
def test_tenant_admins_and_superusers_can_pick_the_tenant(world, tenant, tenant_admin, superuser, who):
    client = tenant_admin if who == "tenant admin" else superuser

    response = client.get(url("deliveries", tenant=tenant.pk))

    assert response.status_code == 200
    assert f"<h1>Deliveries · {tenant}</h1>" in page(response)
    assert sorted(listed(response)) == sorted([world["delivery"].pk, world["failed"].pk])


def test_an_admin_of_two_tenants_sees_both_and_can_narrow_the_log_to_one(world, tenant, other_tenant):
    user = make_user(is_staff=True)
    for each in (tenant, other_tenant):
        MembershipFactory(user=user, tenant=each, role=Role.ADMIN)
    client = Client()
    client.force_login(user)
    theirs = delivery_to(endpoint_for(other_tenant))

    everything = listed(client.get(url("deliveries")))
    narrowed = listed(client.get(url("deliveries", tenant=other_tenant.pk)))

    assert sorted(everything) == sorted([world["delivery"].pk, world["failed"].pk, theirs.pk])
    assert narrowed == [theirs.pk]


def _blocked(tenant, name: str, key: str) -> None:
    published_ago(keyed_deliveries(endpoint_for(tenant, name=name), key, 2), timedelta(hours=2))


def test_the_overview_of_a_tenant_admin_lists_only_its_tenants_blocked_keys(tenant, other_tenant, tenant_admin):
    _blocked(tenant, "orders of the tenant", "conv_ours")
    _blocked(other_tenant, "payroll of the other tenant", "conv_theirs")

    response = tenant_admin.get(url("overview"))

    assert 'class="blocked-key">conv_ours</a>' in section(response, "blocked-keys")
    assert "conv_theirs" not in page(response)


def test_the_log_filtered_by_another_tenants_ordering_key_lists_nothing(tenant, other_tenant, tenant_admin):
    keyed_deliveries(endpoint_for(other_tenant), "conv_1", 2)

    assert listed(tenant_admin.get(url("deliveries", ordering_key="conv_1"))) == []


def test_an_admin_of_two_tenants_sees_the_blocked_keys_of_both(tenant, other_tenant):
    client = member_client(tenant, Role.ADMIN, is_staff=True)
    MembershipFactory(user=client.user, tenant=other_tenant, role=Role.ADMIN)
    _blocked(tenant, "orders of the tenant", "conv_ours")
    _blocked(other_tenant, "payroll of the other tenant", "conv_theirs")

    table = section(client.get(url("overview")), "blocked-keys")

    assert "conv_ours" in table and "conv_theirs" in table


def test_a_superuser_sees_every_tenants_blocked_keys_until_one_is_picked(tenant, other_tenant, superuser):
    _blocked(tenant, "orders of the tenant", "conv_ours")
    _blocked(other_tenant, "payroll of the other tenant", "conv_theirs")

    everyone = section(superuser.get(url("overview")), "blocked-keys")
    picked = section(superuser.get(url("overview", tenant=other_tenant.pk)), "blocked-keys")

    assert "conv_ours" in everyone and "conv_theirs" in everyone
    assert "conv_ours" not in picked and "conv_theirs" in picked
    assert f"tenant={other_tenant.pk}" in picked  # the key's log link keeps the tenant picked


def test_a_superuser_sees_every_tenants_endpoints(tenant, other_tenant, superuser):
    endpoint_for(tenant, name="orders of the tenant")
    endpoint_for(other_tenant, name="payroll of the other tenant")

    response = superuser.get(url("overview"))

    table = section(response, "endpoint-health")
    assert "orders of the tenant" in table
    assert "payroll of the other tenant" in table


def test_a_superuser_sees_every_tenants_deliveries_in_the_log(tenant, other_tenant, superuser):
    ours = delivery_to(endpoint_for(tenant))
    theirs = delivery_to(endpoint_for(other_tenant))

    assert listed(superuser.get(url("deliveries"))) == [theirs.pk, ours.pk]


def test_another_tenants_delivery_as_a_cursor_is_ignored(tenant, other_tenant, tenant_admin):
    own = delivery_to(endpoint_for(tenant))
    theirs = delivery_to(endpoint_for(other_tenant))

    # Paging "before" someone else's delivery must not place it in time: the newest page is shown.
    assert listed(tenant_admin.get(url("deliveries", before=theirs.pk))) == [own.pk]


@pytest.mark.parametrize(
    "path",
    ["/dashboard/endpoints/ep%00x/", "/dashboard/deliveries/99999999999999999999/"],
    ids=["nul in an endpoint id", "delivery id beyond bigint"],
)
def test_malformed_ids_are_404_not_500(tenant_admin, path):
    assert tenant_admin.get(path).status_code == 404


@pytest.mark.parametrize("query", [{"before": "²"}, {"after": "٣"}, {"q": "²"}], ids=["before", "after", "search"])
def test_unicode_digits_in_the_log_are_not_taken_for_ids(tenant, tenant_admin, query):
    own = delivery_to(endpoint_for(tenant))

    response = tenant_admin.get(url("deliveries", **query))

    assert response.status_code == 200
    assert listed(response) == ([] if "q" in query else [own.pk])
