"""deploy/: the Grafana dashboard and the alert rules parse and use only metrics /metrics serves."""

import json
import re
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "webhookhub.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
TOKEN = "deploy-files-token-0123456789"
METRIC = re.compile(r"\bwebhookhub_[a-z_]+\b")


def _served_samples(settings) -> set[str]:
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "METRICS_TOKEN": TOKEN}
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    families = text_string_to_metric_families(response.content.decode())
    return {sample.name for family in families for sample in family.samples}


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_dashboard_is_importable_with_a_prometheus_data_source():
    dashboard = json.loads(DASHBOARD.read_text())

    assert [i["pluginId"] for i in dashboard["__inputs"]] == ["prometheus"]
    assert len(dashboard["panels"]) >= 8
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    assert all(panel["datasource"]["uid"] == "${DS_PROMETHEUS}" for panel in dashboard["panels"])


def test_the_alert_rules_cover_lag_failure_rate_and_disabled_endpoints():
    rules = {rule["alert"]: rule for rule in _alert_rules()}

    assert "webhookhub_delivery_lag_seconds" in rules["WebhookhubDeliveryLag"]["expr"]
    assert "webhookhub_attempts_total" in rules["WebhookhubAttemptFailureRate"]["expr"]
    assert 'state="disabled"' in rules["WebhookhubEndpointsDisabled"]["expr"]
    assert all(rule["annotations"]["summary"] for rule in rules.values())


@pytest.mark.django_db
def test_every_metric_the_dashboard_and_the_alerts_use_is_served(settings):
    served = _served_samples(settings)
    used = {
        name
        for text in [*_dashboard_expressions(), *(r["expr"] for r in _alert_rules())]
        for name in METRIC.findall(text)
    }

    assert len(used) >= 7
    assert used <= served, used - served
