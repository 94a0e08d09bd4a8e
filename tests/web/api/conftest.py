from tests.support.api_clients import admin  # noqa: F401 (fixtures)
