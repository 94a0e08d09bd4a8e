"""The OpenAPI document and Swagger UI are public and describe every route."""

import pytest
import yaml
from rest_framework.test import APIClient

from tests.web.api.support import API

pytestmark = pytest.mark.django_db

EXPECTED = {
    "/api/v1/endpoints/": {"get", "post"},
    "/api/v1/endpoints/{id}/": {"get", "patch", "delete"},
    "/api/v1/endpoints/{id}/secret/": {"get"},
    "/api/v1/endpoints/{id}/rotate-secret/": {"post"},
    "/api/v1/endpoints/{id}/public-key/": {"get"},
    "/api/v1/endpoints/{id}/rotate-signing-key/": {"post"},
    "/api/v1/endpoints/{id}/rotate-verification-token/": {"post"},
    "/api/v1/endpoints/{id}/preview/": {"post"},
    "/api/v1/endpoints/{id}/enable/": {"post"},
    "/api/v1/endpoints/{id}/disable/": {"post"},
    "/api/v1/endpoints/{id}/test/": {"post"},
    "/api/v1/endpoints/{id}/replay/": {"post"},
    "/api/v1/endpoints/{id}/stats/": {"get"},
    "/api/v1/events/": {"get", "post"},
    "/api/v1/events/{id}/": {"get"},
    "/api/v1/events/batch/": {"post"},
    "/api/v1/deliveries/": {"get"},
    "/api/v1/deliveries/{id}/": {"get"},
    "/api/v1/deliveries/{id}/resend/": {"post"},
    "/api/v1/api-keys/": {"get", "post"},
    "/api/v1/api-keys/{id}/": {"get"},
    "/api/v1/api-keys/{id}/revoke/": {"post"},
    "/api/v1/event-types/": {"get", "post"},
    "/api/v1/event-types/{name}/": {"get"},
    "/api/v1/triggers/": {"get", "post"},
    "/api/v1/triggers/{id}/": {"get", "patch", "delete"},
    "/api/v1/triggers/{id}/rotate-key/": {"post"},
    "/api/v1/triggers/{id}/requests/": {"get"},
    "/api/v1/triggers/paths/": {"post"},
}
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


@pytest.fixture(scope="module")
def schema_response(django_db_blocker):
    with django_db_blocker.unblock():
        return APIClient().get(API + "/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")


@pytest.fixture(scope="module")
def document(schema_response):
    return schema_response.json()


def test_schema_is_public_and_openapi_3(schema_response, document):
    assert schema_response.status_code == 200
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "webhookhub API"


def test_schema_lists_every_route_and_method(document):
    paths = {path: set(operations) & HTTP_METHODS for path, operations in document["paths"].items()}

    assert paths == EXPECTED


def test_schema_declares_the_bearer_api_key(document):
    assert document["components"]["securitySchemes"]["tenantApiKey"]["scheme"] == "bearer"


def test_schema_yaml_is_the_same_document(document):
    response = APIClient().get(API + "/schema/")

    assert response.status_code == 200
    assert yaml.safe_load(response.content) == document


def test_swagger_ui_is_served(db):
    response = APIClient().get(API + "/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    assert b"/api/v1/schema/" in response.content
