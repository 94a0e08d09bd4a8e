"""Ordering keys over the API and the commands: publish with a key, set an endpoint ordered, read and filter."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from deliveries.models import Delivery
from events.models import Event
from subscriptions.models import Endpoint
from tests.factories import URL, endpoint_for, make_endpoint
from tests.support.db import db_state
from tests.web.api.support import API, ids
from webhookhub import publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def ordered(tenant):
    return endpoint_for(tenant, ordered=True)


def test_an_event_published_with_a_key_is_numbered_for_an_ordered_endpoint(admin, tenant, ordered):
    for n in range(2):
        response = admin.post(
            f"{API}/events/", {"type": "chat.updated", "data": {"n": n}, "ordering_key": "conv_1"}, format="json"
        )
        assert response.status_code == 202, response.content

    events = admin.get(f"{API}/events/", {"ordering_key": "conv_1"}).json()["results"]
    assert [e["ordering_key"] for e in events] == ["conv_1", "conv_1"]
    deliveries = admin.get(f"{API}/deliveries/", {"ordering_key": "conv_1"}).json()["results"]
    assert sorted((d["ordering_key"], d["sequence"]) for d in deliveries) == [("conv_1", 1), ("conv_1", 2)]


def test_a_delivery_says_which_one_it_waits_behind(admin, tenant, ordered):
    first = publish(tenant=tenant, type="chat.updated", data={}, ordering_key="conv_1")
    second = publish(tenant=tenant, type="chat.updated", data={}, ordering_key="conv_1")
    head = Delivery.objects.get(event=first)

    behind = admin.get(f"{API}/deliveries/{Delivery.objects.get(event=second).pk}/").json()
    alone = admin.get(f"{API}/deliveries/{head.pk}/").json()

    assert (behind["waiting_behind"], alone["waiting_behind"]) == (head.pk, None)


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "blank"), ("x" * 201, "200"), ("a\tb", "printable"), (12, "string")],
)
def test_a_bad_key_is_a_400_naming_it_and_writes_nothing(admin, tenant, ordered, key, message):
    before = db_state()

    response = admin.post(f"{API}/events/", {"type": "chat.updated", "data": {}, "ordering_key": key}, format="json")

    assert response.status_code == 400
    assert message in " ".join(response.json()["errors"]["ordering_key"]), response.json()
    assert db_state() == before


def test_a_batch_takes_a_key_per_event(admin, tenant, ordered):
    items = [{"type": "chat.updated", "data": {"n": n}, "ordering_key": f"k{n % 2}"} for n in range(4)]

    response = admin.post(f"{API}/events/batch/", {"events": items}, format="json")

    assert response.status_code == 202, response.content
    keyed = Delivery.objects.order_by("ordering_key", "sequence").values_list("ordering_key", "sequence")
    assert list(keyed) == [("k0", 1), ("k0", 2), ("k1", 1), ("k1", 2)]


def test_ordered_is_set_on_create_and_patch_and_refused_when_not_a_boolean(admin, tenant):
    created = admin.post(f"{API}/endpoints/", {"url": URL, "ordered": True}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["ordered"] is True
    pk = created.json()["id"]

    assert admin.patch(f"{API}/endpoints/{pk}/", {"ordered": False}, format="json").json()["ordered"] is False
    refused = admin.patch(f"{API}/endpoints/{pk}/", {"ordered": "sometimes"}, format="json")

    assert refused.status_code == 400 and "ordered" in refused.json()["errors"]
    assert Endpoint.objects.get(pk=pk).ordered is False


def test_the_endpoint_list_can_be_read_with_ordered(admin, tenant, ordered):
    plain = endpoint_for(tenant)
    listed = {e["id"]: e["ordered"] for e in admin.get(f"{API}/endpoints/").json()["results"]}
    assert listed == {ordered.pk: True, plain.pk: False}
    assert ids(admin.get(f"{API}/endpoints/")) != []


def test_the_commands_take_ordered_and_an_ordering_key(tenant):
    out = StringIO()
    call_command("add_endpoint", "--tenant", tenant.slug, "--url", URL, "--ordered", stdout=out)
    endpoint = Endpoint.objects.get(tenant=tenant)
    assert endpoint.ordered and "(ordered by key)" in out.getvalue()

    call_command("publish", "--tenant", tenant.slug, "--ordering-key", "c9", "chat.updated", "{}", stdout=StringIO())

    assert Delivery.objects.get(endpoint=endpoint).ordering_key == "c9"
    with pytest.raises(CommandError, match="printable"):
        call_command("publish", "--tenant", tenant.slug, "--ordering-key", "a\nb", "chat.updated", "{}")
    assert Event.objects.count() == 1


def test_an_endpoint_made_without_ordered_is_not_ordered(tenant):
    assert make_endpoint(tenant, URL).endpoint.ordered is False
