"""Production settings refuse to start without real secrets; the embedded default needs nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FERNET_KEY = "pd8rzVdQFt0Z3Wdt3XWcJPq8nM2mVJu2sJHtXh8Q2Sg="
PRINT_DEBUG = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
GOOD = {
    "SECRET_KEY": "x9" * 25,
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/9",
    "WEBHOOKHUB_ENCRYPTION_KEY": FERNET_KEY,
}


def load_settings(env: dict[str, str], code: str = PRINT_DEBUG) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WEBHOOKHUB_", "SECRET_KEY", "CELERY_", "DATABASE_PREPARED_STATEMENTS"))
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "webhookhub.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_production_refuses_to_start_without(missing):
    env = {"WEBHOOKHUB_ENV": "production", **{k: v for k, v in GOOD.items() if k != missing}}
    result = load_settings(env)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


def test_production_refuses_a_weak_secret_key():
    result = load_settings({"WEBHOOKHUB_ENV": "production", **GOOD, "SECRET_KEY": "django-insecure-short"})
    assert result.returncode != 0
    assert "SECRET_KEY must be a random value" in result.stderr


def test_production_starts_with_real_settings_and_debug_off():
    result = load_settings({"WEBHOOKHUB_ENV": "production", **GOOD})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_embedded_default_needs_no_environment(tmp_path):
    result = load_settings({"WEBHOOKHUB_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").exists()


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOKHUB_", "SECRET_KEY", "CELERY_", "CACHE"))}
    production = {
        **GOOD,
        "SECRET_KEY": "k3Yq9-vB7zR1m_Lw8pXe2TnC5uHj4sDf6gAo0iWbQyMrVtZlNcKx",  # 52 characters, as check --deploy wants
        "WEBHOOKHUB_ENV": "production",
        "DATABASE_URL": "postgres://webhookhub@db.internal:5432/webhookhub",
        "ALLOWED_HOSTS": "hooks.example.com",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, **production, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_passes_with_the_readmes_production_environment():
    result = _check_deploy({"CACHE_URL": "redis://127.0.0.1:6379/9"})

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_throttles_are_not_shared():
    result = _check_deploy({})

    assert result.returncode != 0
    assert "webhookhub.W002" in result.stderr


def test_a_cache_url_that_is_not_redis_is_refused():
    result = load_settings({**GOOD, "WEBHOOKHUB_ENV": "production", "CACHE_URL": "memcached://127.0.0.1:11211"})

    assert result.returncode != 0
    assert "CACHE_URL must be a redis://" in result.stderr


@pytest.mark.parametrize("days", ["0", "-1", "thirty"])
def test_the_retention_period_must_be_a_positive_number_of_days(days):
    result = load_settings({"WEBHOOKHUB_RETENTION_DAYS": days})

    assert result.returncode != 0
    assert "WEBHOOKHUB_RETENTION_DAYS must be a positive whole number" in result.stderr


@pytest.mark.parametrize("seconds", ["0", "soon"])
def test_the_blocked_key_threshold_must_be_a_positive_number(seconds):
    result = load_settings({"WEBHOOKHUB_ORDERING_BLOCKED_AFTER_SECONDS": seconds})

    assert result.returncode != 0
    assert "WEBHOOKHUB_ORDERING_BLOCKED_AFTER_SECONDS must be a positive whole number" in result.stderr


def test_the_blocked_key_threshold_is_read_from_the_environment():
    result = load_settings(
        {"WEBHOOKHUB_ORDERING_BLOCKED_AFTER_SECONDS": "600"},
        code="import django; django.setup(); from ground.conf import setting; "
        "print(setting('ORDERING_BLOCKED_AFTER_SECONDS'))",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "600"


PRINT_PREPARE = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.DATABASES['default']['OPTIONS'].get('prepare_threshold'))"
)


@pytest.mark.parametrize(("value", "threshold"), [(None, "5"), ("false", "None"), ("true", "5")])
def test_prepared_statements_on_postgresql_unless_turned_off_for_a_pooler(value, threshold):
    env = {"DATABASE_URL": "postgres://u@127.0.0.1:5432/db"}
    if value is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    result = load_settings(env, PRINT_PREPARE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == threshold
