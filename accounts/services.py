"""Writes for tenants, memberships and API keys."""

import hashlib
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, Membership, Role, Tenant

API_KEY_PREFIX = "whk_"


def create_tenant(*, slug: str, name: str = "") -> Tenant:
    validate_slug(slug)
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError(f"A tenant with slug {slug!r} already exists.")
    return Tenant.objects.create(slug=slug, name=name or slug)


def add_member(*, tenant: Tenant, user, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    membership, _ = Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
    return membership


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    key: str  # the full key: shown once, never stored


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(*, tenant: Tenant, name: str = "", role: str = Role.ADMIN) -> CreatedApiKey:
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name or "API key",
        prefix=key[: len(API_KEY_PREFIX) + 8],
        hashed_key=hash_api_key(key),
        role=role,
    )
    return CreatedApiKey(api_key=api_key, key=key)


def authenticate_api_key(key: str) -> ApiKey | None:
    """The live key matching ``key``, with its last use recorded; None if unknown or revoked."""
    api_key = (
        ApiKey.objects.select_related("tenant").filter(hashed_key=hash_api_key(key), revoked_at__isnull=True).first()
    )
    if api_key is not None:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    return api_key


@transaction.atomic
def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
