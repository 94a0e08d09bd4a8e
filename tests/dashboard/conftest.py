from tests.support.admin_clients import other_admin, superuser, tenant_admin  # noqa: F401 (fixtures)
