"""Bad input never gets a 500 or an HTML page: each case the fuzzer and a hand probe found, and the limits."""

import json

import pytest
from django.test import override_settings
from django.urls import include, path
from rest_framework.test import APIClient

from events.models import Trigger
from subscriptions.models import Endpoint
from subscriptions.validation import MAX_CUSTOM_HEADERS, MAX_HEADER_VALUE_BYTES
from tests.factories import URL
from tests.support.db import db_state
from tests.web.api.support import API
from tests.web.triggers.support import EVENT_TYPE, IDENTIFIER, MAPPING, SAMPLE, TRIGGERS

pytestmark = pytest.mark.django_db


def _is_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"detail", "errors"} and body["detail"]
    return body


# --- time filters with any offset Python reads ------------------------------------------------------


@pytest.mark.parametrize("route", ["events", "deliveries"])
@pytest.mark.parametrize("query", ["since=2026-01-01T00:00:00-16:00", "until=2026-01-01T00:00:00%2B23:59"])
def test_a_time_filter_with_a_large_utc_offset_is_answered(admin, route, query):
    response = admin.get(f"{API}/{route}/?{query}")

    assert response.status_code == 200, response.content[:300]


# --- triggers ---------------------------------------------------------------------------------------


def _nested(depth: int) -> dict:
    sample: dict = {"leaf": "x"}
    for _ in range(depth):
        sample = {"a": sample}
    return sample


@pytest.mark.parametrize("field", ["sample", "mapping"])
def test_a_trigger_nested_too_deeply_is_a_400_and_creates_nothing(admin, field):
    fields = {"name": "crm", "event_type": EVENT_TYPE, "sample": SAMPLE, "identifier": IDENTIFIER, "mapping": MAPPING}
    fields[field] = _nested(480)
    body = json.dumps(fields)  # the test client's own encoder would not get this deep either

    response = admin.generic("POST", TRIGGERS, body, content_type="application/json")

    errors = _is_json_error(response, 400)["errors"]
    assert any(name.startswith(field) for name in errors), errors
    assert not Trigger.objects.exists()


def test_a_trigger_identifier_must_name_a_single_value(admin):
    sample = {"contact": {"phone": "+15550100"}}

    response = admin.post(
        TRIGGERS, {"name": "crm", "event_type": EVENT_TYPE, "sample": sample, "identifier": "contact"}, format="json"
    )

    assert "single value" in _is_json_error(response, 400)["errors"]["identifier"][0]
    assert not Trigger.objects.exists()


# --- endpoint headers and auth --------------------------------------------------------------------


def _create(client, **fields):
    return client.post(API + "/endpoints/", {"url": URL, **fields}, format="json")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"custom_headers": {"X-Trail\n": "1"}}, "is not a valid header name"),
        ({"custom_headers": {"X-Big": "v" * (MAX_HEADER_VALUE_BYTES + 1)}}, f"longer than {MAX_HEADER_VALUE_BYTES}"),
        ({"custom_headers": {f"X-H{n}": "1" for n in range(MAX_CUSTOM_HEADERS + 1)}}, f"At most {MAX_CUSTOM_HEADERS}"),
        ({"custom_headers": {"X-Dup": "1", "x-dup": "2"}}, "same header"),
        ({"custom_headers": {"X-Vt": "a\x0bb"}}, "control characters"),
        ({"custom_headers": {"X-Del": "a\x7fb"}}, "control characters"),
        ({"custom_headers": {"X-Nel": "a\x85b"}}, "control characters"),
        ({"auth": {"type": "bearer", "token": "t" * 1_000_000}}, f"longer than {MAX_HEADER_VALUE_BYTES}"),
        ({"auth": {"type": "bearer", "token": "a\x0bb"}}, "control characters"),
        ({"auth": {"type": "basic", "username": "u", "password": "p\x7f"}}, "control characters"),
        (
            {"auth": {"type": "api_key", "header": "X-Key", "value": "v"}, "custom_headers": {"x-key": "1"}},
            "already the auth header",
        ),
        ({"custom_headers": {f"X-H{n}": "v" * 1000 for n in range(10)}}, "add up to more than"),
    ],
)
def test_unusable_headers_and_auth_are_refused_with_the_reason(admin, fields, message):
    before = db_state()

    response = _create(admin, **fields)

    body = _is_json_error(response, 400)
    assert message in json.dumps(body), body
    assert db_state() == before


def test_a_tab_in_a_header_value_is_fine(admin):
    response = _create(admin, custom_headers={"X-Tab": "a\tb"})

    assert response.status_code == 201, response.content


def test_a_patch_cannot_make_the_headers_too_big_either(admin):
    endpoint_id = _create(admin, custom_headers={f"X-H{n}": "v" * 1000 for n in range(5)}).json()["id"]

    response = admin.patch(
        f"{API}/endpoints/{endpoint_id}/", {"auth": {"type": "bearer", "token": "t" * 4000}}, format="json"
    )

    _is_json_error(response, 400)
    assert Endpoint.objects.get(pk=endpoint_id).auth_type == "none"


# --- every /api/v1/ and /triggers/ response is JSON ------------------------------------------------


def test_a_body_over_the_upload_limit_is_a_json_413_and_writes_nothing(admin, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = db_state()

    response = admin.generic(
        "POST", API + "/endpoints/", json.dumps({"url": URL, "description": "x" * 20_000}), "application/json"
    )

    assert "larger than the limit" in _is_json_error(response, 413)["detail"]
    assert db_state() == before


@pytest.mark.parametrize(
    "route", [f"{API}/endpoints/.x/", f"{API}/no-such-thing/", f"{API}/endpoints/ep_1/nope/", "/triggers/a/b/c"]
)
def test_a_path_no_route_matches_is_a_json_404(admin, route):
    assert "Not found" in _is_json_error(admin.get(route), 404)["detail"]


def test_a_method_not_allowed_is_json(admin):
    _is_json_error(admin.put(f"{API}/event-types/"), 405)


def _explodes(request):
    raise RuntimeError("a bug")


urlpatterns = [
    path("api/v1/explode/", _explodes),
    path("elsewhere/explode/", _explodes),
    path("", include("webhookhub.urls")),
]


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_server_error_under_the_api_is_json_and_logged(caplog):
    client = APIClient(raise_request_exception=False)

    body = _is_json_error(client.get("/api/v1/explode/"), 500)

    assert body["detail"] == "Internal server error; it has been logged."
    assert "a bug" not in json.dumps(body)  # nothing of the exception leaks
    assert any(record.exc_info and "a bug" in str(record.exc_info[1]) for record in caplog.records)


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_outside_the_api_django_keeps_its_own_error_pages():
    response = APIClient(raise_request_exception=False).get("/elsewhere/explode/")

    assert response.status_code == 500
    assert not response["Content-Type"].startswith("application/json")


def test_the_schema_documents_the_list_errors(admin):
    schema = admin.get(f"{API}/schema/?format=json").json()
    deliveries = schema["paths"]["/api/v1/deliveries/"]["get"]["responses"]

    assert {"400", "404"} <= set(deliveries)
    assert "cursor" in deliveries["404"]["description"]


def test_html_is_never_returned_for_an_unknown_api_route_even_with_an_html_accept(admin):
    response = admin.get(f"{API}/nope/", HTTP_ACCEPT="text/html")

    _is_json_error(response, 404)
    assert b"<html" not in response.content.lower()
