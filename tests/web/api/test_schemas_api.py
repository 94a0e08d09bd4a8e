"""Event schemas through the REST API: publishing under enforce (400 naming path and rule) and warn (published,
counted on /metrics), the event-type catalog serving each schema, and custom types with their schema and mode."""

import pytest
from django.db.models import Sum
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import Role
from deliveries.models import Delivery, PublishTotal
from events.catalog import CATALOG
from events.catalog_schemas import SCHEMAS
from events.exceptions import SchemaViolation
from events.models import Event, EventType
from tests.factories import endpoint_for
from tests.support.db import db_state
from tests.support.receiver import Reply
from tests.web.api.support import API, key_client, session_client, superuser_client
from webhookhub import publish

pytestmark = pytest.mark.django_db

EVENTS = API + "/events/"
EVENT_TYPES = API + "/event-types/"
METRICS_TOKEN = "metrics-token-0123456789"

GOOD = {"id": "msg_1", "direction": "inbound", "chat_id": "chat_1"}
BAD = {"id": "msg_2", "direction": "sideways"}  # no chat_id (required), a direction not in the enum
INVOICE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["invoice_id"],
    "properties": {"invoice_id": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}},
}


@pytest.fixture
def enforce(settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "SCHEMA_MODE": "enforce"}


@pytest.fixture
def warn(settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "SCHEMA_MODE": "warn", "METRICS_TOKEN": METRICS_TOKEN}


def _violations_on_metrics() -> float:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200, response.content
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if not sample.labels
    }
    return samples["webhookhub_schema_violations_total"]


def _event_type_rows() -> dict:
    return {row[0]: row[1:] for row in EventType.objects.values_list("name", "schema", "schema_mode", "archived")}


# --- publishing ---------------------------------------------------------------------------------------------


def test_publish_under_enforce_answers_400_naming_each_path_and_rule_and_writes_nothing(enforce, admin, tenant):
    endpoint_for(tenant)
    before = db_state(), list(PublishTotal.objects.values_list("events", "deliveries", "schema_violations"))

    response = admin.post(EVENTS, {"type": "message.received", "data": BAD}, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == ["data"]
    lines = errors["data"]
    assert any("data.chat_id: is required (rule: required)" in line for line in lines), lines
    assert any("data.direction: " in line and "(rule: enum)" in line for line in lines), lines
    assert response.json()["detail"] == lines[0]
    assert (db_state(), list(PublishTotal.objects.values_list("events", "deliveries", "schema_violations"))) == before
    assert Event.objects.count() == Delivery.objects.count() == 0


def test_publish_under_enforce_accepts_data_that_fits(enforce, admin, tenant):
    endpoint_for(tenant)

    response = admin.post(EVENTS, {"type": "message.received", "data": GOOD}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["deliveries"] == 1
    assert Event.objects.get(pk=response.json()["id"]).data == GOOD


def test_a_batch_under_enforce_answers_400_naming_the_bad_item(enforce, admin, tenant):
    endpoint_for(tenant)
    before = db_state()
    events = [{"type": "message.received", "data": GOOD}, {"type": "message.received", "data": BAD}]

    response = admin.post(EVENTS + "batch/", {"events": events}, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == ["events.1.data"]
    assert "data.chat_id: is required (rule: required)" in " ".join(errors["events.1.data"])
    assert "(rule: enum)" in " ".join(errors["events.1.data"])
    assert db_state() == before


def test_a_partial_batch_under_enforce_publishes_the_good_items(enforce, admin, tenant):
    events = [{"type": "message.received", "data": BAD}, {"type": "message.received", "data": GOOD}]

    response = admin.post(EVENTS + "batch/", {"events": events, "all_or_nothing": False}, format="json")

    assert response.status_code == 202, response.content
    first, second = response.json()["results"]
    assert "data.chat_id: is required (rule: required)" in " ".join(first["error"]["data"])
    assert list(Event.objects.values_list("pk", flat=True)) == [second["id"]]


def test_publish_under_warn_is_accepted_and_counted_on_metrics(warn, admin, tenant):
    endpoint_for(tenant)
    assert _violations_on_metrics() == 0

    bad = admin.post(EVENTS, {"type": "message.received", "data": BAD}, format="json")
    good = admin.post(EVENTS, {"type": "message.received", "data": GOOD}, format="json")

    assert bad.status_code == good.status_code == 202, (bad.content, good.content)
    assert bad.json()["deliveries"] == 1
    assert Event.objects.get(pk=bad.json()["id"]).data == BAD
    assert _violations_on_metrics() == 1
    assert PublishTotal.objects.aggregate(v=Sum("schema_violations"))["v"] == 1


# --- the catalog ------------------------------------------------------------------------------------------


def test_the_event_type_list_serves_each_catalog_types_schema(admin):
    response = admin.get(EVENT_TYPES)

    assert response.status_code == 200
    served = {row["name"]: row for row in response.json()["results"]}
    assert set(served) >= {spec.name for spec in CATALOG}
    for spec in CATALOG:
        assert served[spec.name]["schema"] == SCHEMAS[spec.name], spec.name
        assert served[spec.name]["schema_mode"] == ""


def test_reading_one_event_type_serves_its_schema(admin):
    response = admin.get(EVENT_TYPES + "chat.transferred/")

    assert response.status_code == 200
    assert response.json()["schema"] == SCHEMAS["chat.transferred"]
    assert response.json()["schema"]["required"] == ["id", "status"]


# --- custom types -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "no-such-type"}, "Not a valid JSON Schema (draft 2020-12)"),
        ({"type": "object", "required": "invoice_id"}, "Not a valid JSON Schema (draft 2020-12)"),
        ({"properties": {"amount": {"minimum": "zero"}}}, "Not a valid JSON Schema (draft 2020-12)"),
        (["invoice_id"], "A schema is a JSON object."),
        ("invoice_id", "A schema is a JSON object."),
    ],
)
def test_creating_a_custom_type_with_an_invalid_schema_answers_400_naming_schema(schema, words):
    before = db_state(), _event_type_rows()

    response = superuser_client().post(EVENT_TYPES, {"name": "invoice.paid", "schema": schema}, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == ["schema"]
    assert errors["schema"][0].startswith(words)
    assert (db_state(), _event_type_rows()) == before


def test_a_schema_referring_to_a_remote_document_is_refused_and_nothing_is_fetched(receiver):
    receiver.default = Reply(headers={"Content-Type": "application/json"}, body=b'{"type": "object"}')
    before = db_state(), _event_type_rows()

    response = superuser_client().post(
        EVENT_TYPES, {"name": "invoice.paid", "schema": {"$ref": receiver.url("/schema.json")}}, format="json"
    )

    assert receiver.requests == []  # the web process fetches nothing a schema points to
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["schema"]
    assert (db_state(), _event_type_rows()) == before


def test_staff_create_a_custom_type_with_a_schema_and_its_mode_which_reads_back(tenant):
    response = superuser_client().post(
        EVENT_TYPES,
        {
            "name": "invoice.paid",
            "description": "An invoice was paid.",
            "schema": INVOICE_SCHEMA,
            "schema_mode": "enforce",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["schema"], response.json()["schema_mode"]) == (INVOICE_SCHEMA, "enforce")
    created = EventType.objects.get(name="invoice.paid")
    assert (created.schema, created.schema_mode) == (INVOICE_SCHEMA, "enforce")
    read = key_client(tenant).get(EVENT_TYPES + "invoice.paid/")
    assert read.status_code == 200
    assert read.json() == {
        "name": "invoice.paid",
        "description": "An invoice was paid.",
        "schema": INVOICE_SCHEMA,
        "schema_mode": "enforce",
        "example": {},
        "archived": False,
    }
    # The type's own mode applies although the deployment only warns.
    with pytest.raises(SchemaViolation) as refused:
        publish(tenant=tenant, type="invoice.paid", data={"amount": -1})
    assert [(v.path, v.rule) for v in refused.value.violations] == [
        ("data.amount", "minimum"),
        ("data.invoice_id", "required"),
    ]
    assert publish(tenant=tenant, type="invoice.paid", data={"invoice_id": "inv_1", "amount": 5}).pk


def test_a_custom_type_without_schema_or_mode_takes_the_deployments(tenant):
    response = superuser_client().post(EVENT_TYPES, {"name": "invoice.paid"}, format="json")

    assert response.status_code == 201, response.content
    assert (response.json()["schema"], response.json()["schema_mode"]) == (None, "")


def test_an_unknown_schema_mode_answers_400_naming_schema_mode():
    before = _event_type_rows()

    response = superuser_client().post(EVENT_TYPES, {"name": "invoice.paid", "schema_mode": "strict"}, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["schema_mode"]
    assert _event_type_rows() == before


@pytest.mark.parametrize(
    "client",
    [
        pytest.param(lambda tenant: key_client(tenant), id="admin key"),
        pytest.param(lambda tenant: session_client(tenant, Role.ADMIN), id="session admin"),
        pytest.param(lambda tenant: session_client(tenant, Role.ADMIN, is_staff=True), id="staff, not superuser"),
    ],
)
def test_tenant_admins_cannot_create_types(client, tenant):
    caller = client(tenant)
    before = db_state(), _event_type_rows()

    response = caller.post(
        EVENT_TYPES, {"name": "invoice.paid", "schema": INVOICE_SCHEMA, "schema_mode": "enforce"}, format="json"
    )

    assert response.status_code == 403, response.content
    assert (db_state(), _event_type_rows()) == before
