"""Who sees which admin pages: tenant admins their own tenants' rows, managers and users nothing, superusers all."""

import pytest
from django.test import Client

from accounts.models import Role
from accounts.services import create_api_key
from deliveries.models import Delivery
from subscriptions.models import Endpoint
from tests.factories import MembershipFactory, TenantFactory, endpoint_for, make_user
from tests.support.db import db_state
from tests.web.admin.support import admin_url, endpoint_form, form_errors, shown_ids, staff_client, text
from webhookhub import publish

pytestmark = pytest.mark.django_db

WEBHOOK_MODELS = {
    "subscriptions_endpoint": "Endpoints",
    "deliveries_delivery": "Deliveries",
    "events_event": "Events",
    "accounts_apikey": "API keys",
    "events_eventtype": "Event types",
}
SUPERUSER_ONLY_MODELS = {"accounts_tenant": "Tenants", "accounts_membership": "Memberships"}
TENANT_ROWS = ["subscriptions_endpoint", "deliveries_delivery", "events_event", "accounts_apikey"]


def _one_row_of_each(tenant) -> dict:
    """One row of every tenant-owned admin model, by admin URL name; values are primary keys."""
    endpoint = endpoint_for(tenant, name=f"endpoint of {tenant.slug}")
    event = publish(tenant=tenant, type="message.received", data={"n": 1}, endpoint_ids=[endpoint.pk])
    delivery = Delivery.objects.get(event=event)
    api_key = create_api_key(tenant=tenant, name=f"key of {tenant.slug}").api_key
    return {
        "subscriptions_endpoint": endpoint.pk,
        "deliveries_delivery": delivery.pk,
        "events_event": event.pk,
        "accounts_apikey": api_key.pk,
    }


@pytest.fixture
def own(tenant):
    return _one_row_of_each(tenant)


@pytest.fixture
def others(other_tenant):
    return _one_row_of_each(other_tenant)


def _index_links(client) -> set[str]:
    response = client.get(admin_url("index"))
    assert response.status_code == 200
    html = text(response)
    models = {**WEBHOOK_MODELS, **SUPERUSER_ONLY_MODELS}
    return {name for name in models if admin_url(f"{name}_changelist") in html}


# --- the index -------------------------------------------------------------------------------------


def test_tenant_admin_index_lists_the_webhook_models_but_not_tenants_or_memberships(tenant_admin):
    response = tenant_admin.get(admin_url("index"))

    html = text(response)
    assert _index_links(tenant_admin) == set(WEBHOOK_MODELS)
    for label in WEBHOOK_MODELS.values():
        assert f">{label}</a>" in html
    assert ">Memberships</a>" not in html
    assert ">Tenants</a>" not in html


@pytest.mark.parametrize("role", [Role.MANAGER, Role.USER])
def test_manager_and_user_staff_see_no_webhook_models_on_the_index(tenant, role):
    client = staff_client(tenant, role)

    response = client.get(admin_url("index"))

    assert response.status_code == 200
    assert _index_links(client) == set()
    assert "have permission to view or edit anything" in text(response)


def test_staff_without_any_membership_sees_no_webhook_models(db):
    assert _index_links(staff_client()) == set()


def test_superuser_index_lists_every_model(superuser):
    assert _index_links(superuser) == set(WEBHOOK_MODELS) | set(SUPERUSER_ONLY_MODELS)


def test_anonymous_is_sent_to_the_login_page(own):
    response = Client().get(admin_url("subscriptions_endpoint_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(admin_url("login"))


def test_tenant_admin_without_is_staff_is_sent_to_the_login_page(tenant, own):
    user = make_user(is_staff=False)
    MembershipFactory(user=user, tenant=tenant, role=Role.ADMIN)
    client = Client()
    client.force_login(user)

    response = client.get(admin_url("subscriptions_endpoint_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(admin_url("login"))


def test_inactive_tenant_admin_cannot_enter(tenant, own):
    client = staff_client(tenant, Role.ADMIN)
    client.user.is_active = False
    client.user.save()

    response = client.get(admin_url("subscriptions_endpoint_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(admin_url("login"))


@pytest.mark.parametrize("name", list(SUPERUSER_ONLY_MODELS))
def test_tenant_admin_gets_403_on_tenant_and_membership_pages(tenant_admin, tenant, name):
    assert tenant_admin.get(admin_url(f"{name}_changelist")).status_code == 403
    assert tenant_admin.get(admin_url(f"{name}_add")).status_code == 403


def test_tenant_admin_cannot_add_a_tenant(tenant_admin):
    before = db_state()

    response = tenant_admin.post(admin_url("accounts_tenant_add"), {"slug": "sneaky", "name": "Sneaky"})

    assert response.status_code == 403
    assert db_state() == before


def test_tenant_admin_cannot_make_themselves_admin_of_another_tenant(tenant_admin, other_tenant):
    before = db_state()

    response = tenant_admin.post(
        admin_url("accounts_membership_add"),
        {"user": tenant_admin.user.pk, "tenant": other_tenant.pk, "role": Role.ADMIN},
    )

    assert response.status_code == 403
    assert db_state() == before


# --- changelists and objects of other tenants ----------------------------------------------------------


@pytest.mark.parametrize("name", TENANT_ROWS)
def test_changelist_shows_only_the_administered_tenants_rows(tenant_admin, own, others, name):
    response = tenant_admin.get(admin_url(f"{name}_changelist"))

    assert response.status_code == 200
    assert shown_ids(text(response), name) == {str(own[name])}


@pytest.mark.parametrize("name", TENANT_ROWS)
def test_admin_of_two_tenants_sees_the_rows_of_both(tenant, other_tenant, own, others, name):
    client = staff_client(tenant, Role.ADMIN)
    MembershipFactory(user=client.user, tenant=other_tenant, role=Role.ADMIN)

    response = client.get(admin_url(f"{name}_changelist"))

    assert shown_ids(text(response), name) == {str(own[name]), str(others[name])}


def test_admin_of_one_tenant_and_manager_of_another_sees_only_the_administered_rows(tenant, other_tenant, own, others):
    client = staff_client(tenant, Role.ADMIN)
    MembershipFactory(user=client.user, tenant=other_tenant, role=Role.MANAGER)

    response = client.get(admin_url("subscriptions_endpoint_changelist"))

    assert shown_ids(text(response), "subscriptions_endpoint") == {own["subscriptions_endpoint"]}


@pytest.mark.parametrize("name", TENANT_ROWS)
def test_superuser_changelist_shows_every_tenants_rows(superuser, own, others, name):
    response = superuser.get(admin_url(f"{name}_changelist"))

    assert shown_ids(text(response), name) == {str(own[name]), str(others[name])}


@pytest.mark.parametrize("name", TENANT_ROWS)
def test_superuser_can_open_any_tenants_object(superuser, others, name):
    response = superuser.get(admin_url(f"{name}_change", others[name]))

    assert response.status_code == 200


@pytest.mark.parametrize("name", TENANT_ROWS)
def test_another_tenants_object_page_says_it_does_not_exist(tenant_admin, other_tenant, others, name):
    response = tenant_admin.get(admin_url(f"{name}_change", others[name]), follow=True)

    assert response.redirect_chain == [(admin_url("index"), 302)]
    html = text(response)
    assert "doesn’t exist. Perhaps it was deleted?" in html
    assert other_tenant.pk not in html


@pytest.mark.parametrize("name", TENANT_ROWS)
def test_tenant_changelist_filter_lists_only_administered_tenants(tenant_admin, other_tenant, own, others, name):
    response = tenant_admin.get(admin_url(f"{name}_changelist"))

    assert response.status_code == 200
    assert f">{other_tenant.name}</a>" not in text(response)
    assert other_tenant.pk not in text(response)


def test_changing_another_tenants_endpoint_changes_nothing(tenant_admin, tenant, other_tenant, others):
    before = db_state()
    endpoint_id = others["subscriptions_endpoint"]

    response = tenant_admin.post(
        admin_url("subscriptions_endpoint_change", endpoint_id),
        endpoint_form(other_tenant, name="hijacked", url="https://93.184.216.35/mine"),
    )

    assert response.status_code == 302
    assert response["Location"] == admin_url("index")
    assert db_state() == before


def test_another_tenants_admin_cannot_see_or_turn_on_ordered_delivery(tenant_admin, other_tenant, others):
    endpoint_id = others["subscriptions_endpoint"]
    before = db_state()

    page = tenant_admin.get(admin_url("subscriptions_endpoint_change", endpoint_id))
    response = tenant_admin.post(
        admin_url("subscriptions_endpoint_change", endpoint_id), endpoint_form(other_tenant, ordered="on")
    )

    assert (page.status_code, page["Location"]) == (302, admin_url("index"))
    assert (response.status_code, response["Location"]) == (302, admin_url("index"))
    assert db_state() == before
    assert Endpoint.objects.get(pk=endpoint_id).ordered is False


def test_deleting_another_tenants_endpoint_deletes_nothing(tenant_admin, others):
    before = db_state()
    endpoint_id = others["subscriptions_endpoint"]

    response = tenant_admin.post(admin_url("subscriptions_endpoint_delete", endpoint_id), {"post": "yes"})

    assert response.status_code == 302
    assert response["Location"] == admin_url("index")
    assert db_state() == before
    assert Endpoint.objects.filter(pk=endpoint_id).exists()


def test_another_tenants_endpoint_pages_answer_404(tenant_admin, others):
    endpoint_id = others["subscriptions_endpoint"]
    delivery_id = others["deliveries_delivery"]
    before = db_state()

    assert tenant_admin.post(admin_url("subscriptions_endpoint_reveal_secret", endpoint_id)).status_code == 404
    assert tenant_admin.get(admin_url("subscriptions_endpoint_reveal_secret", endpoint_id)).status_code == 404
    assert tenant_admin.post(admin_url("subscriptions_endpoint_rotate_signing_key", endpoint_id)).status_code == 404
    assert tenant_admin.get(admin_url("subscriptions_endpoint_send_test", endpoint_id)).status_code == 404
    send = tenant_admin.post(admin_url("subscriptions_endpoint_send_test", endpoint_id), {"example": "webhook.test"})
    assert send.status_code == 404
    result_url = admin_url("subscriptions_endpoint_test_result", endpoint_id, delivery_id)
    assert tenant_admin.get(result_url).status_code == 404
    assert db_state() == before


@pytest.mark.parametrize("action", ["enable", "disable", "rotate", "rotate_key", "send_test", "delete_selected"])
def test_endpoint_actions_on_another_tenants_endpoint_change_nothing(tenant_admin, others, action):
    before = db_state()

    response = tenant_admin.post(
        admin_url("subscriptions_endpoint_changelist"),
        {"action": action, "_selected_action": [others["subscriptions_endpoint"]], "post": "yes"},
    )

    assert response.status_code == 302
    assert db_state() == before


@pytest.mark.parametrize("action", ["resend_now", "cancel_pending"])
def test_delivery_actions_on_another_tenants_delivery_change_nothing(tenant_admin, others, action):
    before = db_state()

    response = tenant_admin.post(
        admin_url("deliveries_delivery_changelist"),
        {"action": action, "_selected_action": [others["deliveries_delivery"]]},
    )

    assert response.status_code == 302
    assert db_state() == before


def test_revoking_another_tenants_api_key_changes_nothing(tenant_admin, others):
    before = db_state()

    response = tenant_admin.post(
        admin_url("accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [others["accounts_apikey"]]},
    )

    assert response.status_code == 302
    assert db_state() == before


# --- managers and users: 403 everywhere, nothing changes -----------------------------------------------


def _pages(rows: dict) -> list[tuple[str, str, dict | None]]:
    """(method, url, data) of every webhook page of the tenant that owns ``rows``."""
    endpoint_id, delivery_id = rows["subscriptions_endpoint"], rows["deliveries_delivery"]
    pages = []
    for name in TENANT_ROWS:
        pages += [
            ("get", admin_url(f"{name}_changelist"), None),
            ("get", admin_url(f"{name}_add"), None),
            ("get", admin_url(f"{name}_change", rows[name]), None),
            ("get", admin_url(f"{name}_delete", rows[name]), None),
            ("post", admin_url(f"{name}_delete", rows[name]), {"post": "yes"}),
        ]
    pages += [
        ("get", admin_url("events_eventtype_changelist"), None),
        ("get", admin_url("events_eventtype_change", "webhook.test"), None),
        ("get", admin_url("subscriptions_endpoint_reveal_secret", endpoint_id), None),
        ("post", admin_url("subscriptions_endpoint_reveal_secret", endpoint_id), {}),
        ("get", admin_url("subscriptions_endpoint_rotate_signing_key", endpoint_id), None),
        ("post", admin_url("subscriptions_endpoint_rotate_signing_key", endpoint_id), {}),
        ("get", admin_url("subscriptions_endpoint_send_test", endpoint_id), None),
        ("post", admin_url("subscriptions_endpoint_send_test", endpoint_id), {"example": "webhook.test"}),
        ("get", admin_url("subscriptions_endpoint_test_result", endpoint_id, delivery_id), None),
    ]
    return pages


def _posts(rows: dict, tenant) -> list[tuple[str, dict]]:
    """Every write a tenant admin could make: add and change forms, and every action."""
    endpoint_id = rows["subscriptions_endpoint"]
    posts = [
        (admin_url("subscriptions_endpoint_add"), endpoint_form(tenant, name="new")),
        (admin_url("subscriptions_endpoint_change", endpoint_id), endpoint_form(tenant, name="changed")),
        (admin_url("accounts_apikey_add"), {"tenant": tenant.pk, "name": "new key", "role": Role.ADMIN}),
        (admin_url("accounts_apikey_change", rows["accounts_apikey"]), {"name": "renamed"}),
    ]
    for action in ["enable", "disable", "rotate", "rotate_key", "send_test", "delete_selected"]:
        posts.append(
            (
                admin_url("subscriptions_endpoint_changelist"),
                {"action": action, "_selected_action": [endpoint_id], "post": "yes"},
            )
        )
    for action in ["resend_now", "cancel_pending"]:
        posts.append(
            (
                admin_url("deliveries_delivery_changelist"),
                {"action": action, "_selected_action": [rows["deliveries_delivery"]]},
            )
        )
    posts.append(
        (admin_url("accounts_apikey_changelist"), {"action": "revoke", "_selected_action": [rows["accounts_apikey"]]})
    )
    return posts


@pytest.mark.parametrize("role", [Role.MANAGER, Role.USER])
def test_manager_and_user_get_403_on_every_webhook_page(tenant, own, role):
    client = staff_client(tenant, role)
    before = db_state()

    answers = {(method, url): getattr(client, method)(url, data).status_code for method, url, data in _pages(own)}

    assert answers == {key: 403 for key in answers}
    assert db_state() == before


@pytest.mark.parametrize("role", [Role.MANAGER, Role.USER])
@pytest.mark.parametrize("name", TENANT_ROWS)
def test_manager_and_user_see_nothing_on_history_pages(tenant, own, role, name):
    """Django looks the object up before checking permissions here: "doesn't exist" instead of 403, nothing shown."""
    client = staff_client(tenant, role)

    response = client.get(admin_url(f"{name}_history", own[name]), follow=True)

    assert response.redirect_chain == [(admin_url("index"), 302)]
    assert "doesn’t exist. Perhaps it was deleted?" in text(response)
    assert "have permission to view or edit anything" in text(response)


@pytest.mark.parametrize("role", [Role.MANAGER, Role.USER])
def test_manager_and_user_writes_are_refused_and_change_nothing(tenant, own, role):
    client = staff_client(tenant, role)
    before = db_state()

    answers = [(url, data.get("action"), client.post(url, data).status_code) for url, data in _posts(own, tenant)]

    assert [answer for answer in answers if answer[2] != 403] == []
    assert db_state() == before


# --- foreign-key choices -----------------------------------------------------------------------------


def test_endpoint_add_form_offers_only_administered_tenants(tenant_admin, tenant, other_tenant):
    third = TenantFactory()
    MembershipFactory(user=tenant_admin.user, tenant=third, role=Role.ADMIN)
    MembershipFactory(user=tenant_admin.user, tenant=other_tenant, role=Role.MANAGER)

    response = tenant_admin.get(admin_url("subscriptions_endpoint_add"))

    assert response.status_code == 200
    choices = {str(value) for value, _ in _tenant_choices(response)}
    assert choices == {tenant.pk, third.pk}
    assert other_tenant.pk not in text(response)


def _tenant_choices(response):
    return [(value, label) for value, label in response.context["adminform"].form.fields["tenant"].choices if value]


def test_endpoint_add_with_another_tenants_id_is_a_form_error_and_creates_nothing(tenant_admin, other_tenant):
    before = db_state()

    response = tenant_admin.post(admin_url("subscriptions_endpoint_add"), endpoint_form(other_tenant))

    assert response.status_code == 200
    assert "Select a valid choice" in str(form_errors(response)["tenant"])
    assert db_state() == before


def test_api_key_add_with_another_tenants_id_is_a_form_error_and_creates_nothing(tenant_admin, other_tenant):
    before = db_state()

    response = tenant_admin.post(
        admin_url("accounts_apikey_add"), {"tenant": other_tenant.pk, "name": "theirs", "role": Role.ADMIN}
    )

    assert response.status_code == 200
    assert "Select a valid choice" in str(form_errors(response)["tenant"])
    assert db_state() == before


def test_an_endpoint_cannot_be_moved_to_another_tenant(tenant_admin, tenant, other_tenant):
    endpoint = endpoint_for(tenant)

    response = tenant_admin.post(admin_url("subscriptions_endpoint_change", endpoint.pk), endpoint_form(other_tenant))

    assert response.status_code == 302  # the tenant is read-only on the change form: the posted one is ignored
    endpoint.refresh_from_db()
    assert endpoint.tenant_id == tenant.pk


def test_superuser_add_form_offers_every_tenant(superuser, tenant, other_tenant):
    response = superuser.get(admin_url("subscriptions_endpoint_add"))

    assert {str(value) for value, _ in _tenant_choices(response)} == {tenant.pk, other_tenant.pk}
