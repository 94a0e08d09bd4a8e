"""The warning points and the public address come from the environment, checked at start-up."""

import pytest

from tests.test_settings import load_settings

PRINT = (
    "import django; django.setup(); from ground.conf import setting; "
    "print(setting('DISABLE_WARNING_AFTER_SECONDS'), setting('DISABLE_WARNING_SHARES'), repr(setting('PUBLIC_URL')))"
)


def test_the_warning_points_and_public_url_are_read_from_the_environment(tmp_path):
    result = load_settings(
        {
            "WEBHOOKHUB_DATA_DIR": str(tmp_path),
            "WEBHOOKHUB_DISABLE_WARNING_AFTER_SECONDS": "7200",
            "WEBHOOKHUB_DISABLE_WARNING_SHARES": "0.25, 0.75",
            "WEBHOOKHUB_PUBLIC_URL": "https://hooks.example.com/",
        },
        PRINT,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7200", "[0.25,", "0.75]", "'https://hooks.example.com'"]


def test_zero_and_an_empty_list_turn_the_warnings_off(tmp_path):
    env = {
        "WEBHOOKHUB_DATA_DIR": str(tmp_path),
        "WEBHOOKHUB_DISABLE_WARNING_AFTER_SECONDS": "0",
        "WEBHOOKHUB_DISABLE_WARNING_SHARES": "",
    }
    result = load_settings(env, PRINT)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["0", "[]"]


def test_development_links_to_the_local_web_process(tmp_path):
    result = load_settings({"WEBHOOKHUB_DATA_DIR": str(tmp_path), "PORT": "8123"}, PRINT)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "'http://127.0.0.1:8123'"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEBHOOKHUB_DISABLE_WARNING_AFTER_SECONDS", "-5", "must be a whole number of seconds"),
        ("WEBHOOKHUB_DISABLE_WARNING_AFTER_SECONDS", "1h", "must be a whole number of seconds"),
        ("WEBHOOKHUB_DISABLE_WARNING_SHARES", "0.5,1", "must be shares between 0 and 1"),
        ("WEBHOOKHUB_DISABLE_WARNING_SHARES", "50%", "must be shares between 0 and 1"),
        ("WEBHOOKHUB_DISABLE_WARNING_SHARES", "0,0.5", "must be shares between 0 and 1"),
        ("WEBHOOKHUB_PUBLIC_URL", "hooks.example.com", "must be an http(s) URL"),
        ("WEBHOOKHUB_PUBLIC_URL", "ftp://hooks.example.com", "must be an http(s) URL"),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_variable(tmp_path, name, value, message):
    result = load_settings({"WEBHOOKHUB_DATA_DIR": str(tmp_path), name: value}, PRINT)

    assert result.returncode != 0
    assert f"{name} {message}" in result.stderr
