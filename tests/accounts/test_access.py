"""accounts.access: the one answer to who may act for which tenant (API, admin, dashboard)."""

import pytest

from accounts.access import administered_tenants, is_tenant_admin, tenant_named
from accounts.models import Role
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_admins_administer_their_tenants_and_managers_and_users_none(tenant, other_tenant):
    admin, manager, user = UserFactory(), UserFactory(), UserFactory()
    MembershipFactory(user=admin, tenant=tenant, role=Role.ADMIN)
    MembershipFactory(user=admin, tenant=other_tenant, role=Role.MANAGER)
    MembershipFactory(user=manager, tenant=tenant, role=Role.MANAGER)
    MembershipFactory(user=user, tenant=tenant, role=Role.USER)

    assert list(administered_tenants(admin)) == [tenant] and is_tenant_admin(admin)
    assert not administered_tenants(manager).exists() and not is_tenant_admin(manager)
    assert not administered_tenants(user).exists() and not is_tenant_admin(user)


def test_superusers_administer_every_tenant_and_inactive_users_none(tenant, other_tenant):
    boss = UserFactory(is_superuser=True)
    gone = UserFactory(is_active=False)
    MembershipFactory(user=gone, tenant=tenant, role=Role.ADMIN)

    assert set(administered_tenants(boss)) == {tenant, other_tenant} and is_tenant_admin(boss)
    assert not administered_tenants(gone).exists() and not is_tenant_admin(gone)


def test_a_tenant_is_named_by_slug_or_id_and_only_among_those_given(tenant, other_tenant):
    assert tenant_named(tenant.slug) == tenant
    assert tenant_named(tenant.pk) == tenant
    assert tenant_named("no-such-tenant") is None
    mine = administered_tenants(UserFactory(is_superuser=True)).filter(pk=tenant.pk)
    assert tenant_named(other_tenant.slug, among=mine) is None
    assert tenant_named(tenant.slug, among=mine) == tenant


def test_a_slug_wins_over_an_id_that_reads_the_same(tenant):
    lookalike = TenantFactory(slug=tenant.pk.lower()[:64])

    assert tenant_named(lookalike.slug) == lookalike
