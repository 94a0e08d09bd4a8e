"""A write the API does not understand is refused: every route that takes a body answers 400 naming each key it
does not know (or that is read-only), and writes nothing; the schema says so too (additionalProperties: false)."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from accounts.services import create_api_key
from deliveries.models import Delivery
from events.models import Trigger
from subscriptions.models import Endpoint
from tests.factories import URL, endpoint_for, failed_delivery
from tests.support.db import db_state, rows
from tests.web.api.support import API, superuser_client
from tests.web.triggers.support import SAMPLE, make_trigger

pytestmark = pytest.mark.django_db

_WINDOW = {
    "since": (timezone.now() - timedelta(days=1)).isoformat(),
    "until": (timezone.now() + timedelta(days=1)).isoformat(),
}
_EVENT = {"type": "message.received", "data": {"text": "hi"}}


@dataclass(frozen=True)
class Write:
    method: str
    path: str  # {endpoint}, {trigger} are filled in
    body: dict  # a body the route accepts; the test adds a key it does not know
    staff: bool = False  # platform staff only (the event-type catalog)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


WRITES = [
    Write("post", "/endpoints/", {"url": URL, "event_types": ["message.received"]}),
    Write("patch", "/endpoints/{endpoint}/", {"name": "renamed"}),
    Write("post", "/endpoints/{endpoint}/enable/", {"force": True}),
    Write("post", "/endpoints/{endpoint}/test/", {}),
    Write("post", "/endpoints/{endpoint}/preview/", {"limit": 5}),
    Write("post", "/endpoints/{endpoint}/replay/", _WINDOW),
    Write("post", "/events/", _EVENT),
    Write("post", "/events/batch/", {"events": [_EVENT]}),
    Write("post", "/api-keys/", {"name": "deploy bot"}),
    Write("post", "/event-types/", {"name": "invoice.paid", "description": "An invoice was paid."}, staff=True),
    Write(
        "post",
        "/triggers/",
        {"name": "crm", "event_type": "contact.created", "sample": SAMPLE, "identifier": "contact.phone"},
    ),
    Write("patch", "/triggers/{trigger}/", {"name": "renamed"}),
    Write("post", "/triggers/paths/", {"sample": SAMPLE}),
]


def _snapshot() -> dict:
    """Every row a write could change, the new endpoint columns and triggers too."""
    return {
        **db_state(),
        "policy": rows(Endpoint, "retry_schedule", "auto_disable_after_seconds", "adaptive_concurrency", "ordered"),
        "triggers": rows(Trigger, "tenant_id", "name", "event_type_id", "enabled", "mapping", "updated_at"),
    }


@pytest.fixture
def objects(tenant) -> dict[str, str]:
    endpoint = endpoint_for(tenant)
    failed_delivery(tenant, endpoint)
    return {"endpoint": endpoint.pk, "trigger": make_trigger(tenant).trigger.pk}


def _send(client, write: Write, objects: dict[str, str], body: dict):
    return getattr(client, write.method)(API + write.path.format(**objects), body, format="json")


@pytest.mark.parametrize("write", [pytest.param(write, id=write.id) for write in WRITES])
def test_an_unknown_field_is_refused_by_name_and_nothing_is_written(admin, objects, write):
    client = superuser_client() if write.staff else admin
    before = _snapshot()

    response = _send(client, write, objects, {**write.body, "retry_schedul": [1, 1, 1]})

    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body["errors"]) == ["retry_schedul"]
    assert body["errors"]["retry_schedul"][0].startswith("Unknown field 'retry_schedul'")
    assert "Known fields: " in body["errors"]["retry_schedul"][0]
    assert body["detail"] == body["errors"]["retry_schedul"][0]
    assert _snapshot() == before


def test_the_table_covers_every_route_that_takes_a_body():
    """A new write route must be added above (and refuse what it does not know)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    with_body = {
        f"{method} {path.removeprefix(API)}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    covered = {write.id.replace("{endpoint}", "{id}").replace("{trigger}", "{id}") for write in WRITES}
    assert with_body == covered


def test_every_request_body_schema_refuses_additional_properties():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    refs = {
        media["schema"]["$ref"].rsplit("/", 1)[1]
        for operations in schema["paths"].values()
        for operation in operations.values()
        for media in operation.get("requestBody", {}).get("content", {}).values()
    }
    assert refs and all(components[name]["additionalProperties"] is False for name in refs)
    assert components["AuthRequest"]["additionalProperties"] is False  # nested ones too
    # Free-form objects stay open: an event's data, custom headers, a filter.
    assert components["PublishRequest"]["properties"]["data"]["additionalProperties"] == {}
    endpoint_write = components["EndpointWriteRequest"]["properties"]
    assert endpoint_write["custom_headers"]["additionalProperties"] == {"type": "string"}


def test_several_unknown_fields_are_each_named_with_the_errors_of_known_ones(admin, objects):
    before = _snapshot()

    response = admin.patch(
        f"{API}/endpoints/{objects['endpoint']}/",
        {"nme": "x", "colour": "red", "max_in_flight": 0},
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"nme", "colour", "max_in_flight"}
    assert "did you mean 'name'?" in errors["nme"][0]
    assert "did you mean" not in errors["colour"][0]
    assert _snapshot() == before


def test_a_read_only_field_copied_from_a_read_is_refused_as_read_only(admin, objects):
    endpoint = admin.get(f"{API}/endpoints/{objects['endpoint']}/").json()
    before = _snapshot()

    response = admin.patch(
        f"{API}/endpoints/{objects['endpoint']}/",
        {"name": "renamed", "id": endpoint["id"], "created_at": endpoint["created_at"], "scheduling": {}},
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"id", "created_at", "scheduling"}
    assert errors["id"] == ["'id' is read-only: it cannot be written. Leave it out of the request."]
    assert _snapshot() == before


def test_an_api_key_read_only_field_is_refused(admin):
    before = _snapshot()

    response = admin.post(f"{API}/api-keys/", {"name": "bot", "prefix": "whk_abc"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "prefix": ["'prefix' is read-only: it cannot be written. Leave it out of the request."]
    }
    assert _snapshot() == before


def test_an_unknown_key_inside_auth_is_named_with_its_path(admin, objects):
    before = _snapshot()

    response = admin.patch(
        f"{API}/endpoints/{objects['endpoint']}/",
        {"auth": {"type": "bearer", "token": "tok-0123456789", "tokn": "x"}},
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["auth.tokn"]
    assert "did you mean 'token'?" in errors["auth.tokn"][0]
    assert _snapshot() == before


def test_an_unknown_key_in_one_event_of_a_batch_is_named_at_its_index(admin, objects):
    before = _snapshot()

    response = admin.post(
        f"{API}/events/batch/", {"events": [_EVENT, {**_EVENT, "ocurred_at": "2026-01-01T00:00:00Z"}]}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["events.1.ocurred_at"]
    assert _snapshot() == before


def test_the_keys_inside_event_data_are_never_checked(admin, objects):
    response = admin.post(
        f"{API}/events/", {"type": "message.received", "data": {"anything": 1, "id": 2}}, format="json"
    )

    assert response.status_code == 202, response.content


def test_an_idempotency_key_in_a_single_publish_body_points_to_the_header(admin, objects):
    before = _snapshot()

    response = admin.post(f"{API}/events/", {**_EVENT, "idempotency_key": "k1"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["idempotency_key"] == [
        "Unknown field 'idempotency_key': give it in the Idempotency-Key header (or use /events/batch/)."
    ]
    assert _snapshot() == before


def test_a_form_encoded_body_is_checked_too(admin, objects):
    before = _snapshot()

    response = admin.post(f"{API}/api-keys/", {"name": "bot", "rol": "admin"})  # multipart, as a browser form posts

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["rol"]
    assert _snapshot() == before


def test_a_known_body_still_writes(admin, objects):
    response = admin.patch(f"{API}/endpoints/{objects['endpoint']}/", {"name": "renamed"}, format="json")

    assert response.status_code == 200
    assert Endpoint.objects.get(pk=objects["endpoint"]).name == "renamed"


BODILESS = [
    "/endpoints/{endpoint}/disable/",
    "/endpoints/{endpoint}/rotate-secret/",
    "/endpoints/{endpoint}/rotate-signing-key/",
    "/endpoints/{endpoint}/rotate-verification-token/",
    "/deliveries/{delivery}/resend/",
    "/api-keys/{api_key}/revoke/",
    "/triggers/{trigger}/rotate-key/",
]


@pytest.fixture
def bodiless_objects(tenant, objects) -> dict[str, str]:
    api_key = create_api_key(tenant=tenant, name="revocable").api_key
    delivery = Delivery.objects.filter(endpoint_id=objects["endpoint"]).first()
    return {**objects, "delivery": str(delivery.pk), "api_key": str(api_key.pk)}


@pytest.mark.parametrize("path", BODILESS)
def test_an_action_that_takes_no_body_refuses_one_by_name_and_does_nothing(admin, bodiless_objects, path):
    before = _snapshot()

    response = admin.post(API + path.format(**bodiless_objects), {"reason": "maintenance"}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {"reason": ["Unknown field 'reason': this action takes no body."]}
    assert _snapshot() == before


def test_a_form_post_spells_nested_fields_with_dots_and_they_are_known(admin, objects):
    response = admin.post(
        f"{API}/endpoints/",
        {"url": URL, "event_types": "message.received", "auth.type": "bearer", "auth.token": "tok-12345678"},
    )

    errors = response.json().get("errors", {}) if response.status_code == 400 else {}
    assert not {"auth.type", "auth.token"} & set(errors), response.content
