"""deploy/monitoring/: the alert rules pass `promtool check rules` and their own `promtool test rules`, and the
dashboard and the rules query only metrics a running API server or its Envoy really export."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devcluster import binaries
from devcluster import stack as devstack
from novasphere.v1 import wukong_service_pb2 as service_pb2
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from novasphere_envoy import config as envoy_config
from novasphere_envoy import local_http

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "dashboard.json"
PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes itself for every target."""
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right", "on", "ignoring"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


@pytest.fixture(scope="module")
def promtool() -> Path:
    return binaries.ensure_promtool()


def _promtool(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, timeout=120, check=False)


def test_the_alert_rules_pass_promtool_and_fire_in_their_unit_tests(promtool: Path) -> None:
    checked = _promtool(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool(promtool, "test", "rules", str(MONITORING / "alerts_test.yaml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    wanted = {"ApiDown", "InformerStale", "ErrorRatio", "TaskFailureRatio", "ConsoleErrors", "CertificateExpiry"}
    assert {f"NovaSphere{name}" for name in wanted} <= alerts


def test_every_dashboard_query_is_valid_promql(promtool: Path, tmp_path: Path) -> None:
    """Each query, its Grafana variables filled in, as a recording rule: promtool parses it."""
    rules = [{"record": f"dashboard:query:{number}", "expr": expr} for number, expr in enumerate(_dashboard_queries())]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = _promtool(promtool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_and_the_rules_query_only_metrics_the_api_and_envoy_export(
    stack: devstack.Stack, grpc_envoy: WukongServiceStub
) -> None:
    # Envoy makes a cluster's per-status stats at its first request to it: one call through Envoy.
    grpc_envoy.ListWukongs(service_pb2.ListWukongsRequest(page_size=1))
    api_text = httpx.get(stack.metrics_url, timeout=10).text
    status, envoy_text = local_http.request(
        local_http.HostPort("127.0.0.1", stack.ports.envoy_admin), envoy_config.STATS_PATH, timeout=10
    )
    assert status == 200
    exported = _series_names(api_text) | _series_names(envoy_text) | PROMETHEUS_OWN
    rule_queries = [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    queried = {name for expr in [*rule_queries, *_dashboard_queries()] for name in metric_names(expr)}
    assert queried - exported == set()
    # What each part is about is really on the dashboard.
    for name in (
        "novasphere_informer_staleness_seconds",
        "novasphere_watch_streams",
        "novasphere_watch_fanout_lag_seconds_bucket",
        "novasphere_kube_request_duration_seconds_bucket",
        "novasphere_kube_request_errors_total",
        "novasphere_task_duration_seconds_count",
        "novasphere_login_failures_total",
        "novasphere_login_lockouts_total",
        "novasphere_rate_limited_total",
        "envoy_http_local_rate_limit_rate_limited",
        "envoy_http_downstream_rq_xx",
    ):
        assert name in queried, name


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label matchers, ranges, grouping
    label lists, function names, keywords and numbers are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)\b(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name not in KEYWORDS:
            names.add(name)
    return names


def _dashboard_queries() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["query"]["query"])
            assert selector is not None, variable
            queries.append(selector.group(1))
    for name, value in GRAFANA_VARIABLES.items():
        queries = [query.replace(name, value) for query in queries]
    assert queries
    assert [query for query in queries if "$" in query] == []
    return queries


def _series_names(text: str) -> set[str]:
    """Every series name in a scrape, as Prometheus stores them: each sample's, and those a family declares before
    its first sample (a labelled counter no request has touched yet). Read from the text, not with
    prometheus_client's parser, which renames Envoy's counters to `…_total`."""
    names = set()
    for line in text.splitlines():
        declared = re.fullmatch(r"# TYPE (\S+) (\w+)", line)
        if declared:
            name, kind = declared.groups()
            names |= {name + suffix for suffix in HISTOGRAM_SUFFIXES} if kind == "histogram" else {name}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def test_metric_names_are_found_in_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, method) (rate(novasphere_x_bucket{a="b", c=~"d|e"}[5m]))) '
        '/ on (pod) group_left up{job="x"} > bool 0.5 and absent(other_total offset 5m)'
    )
    assert metric_names(expr) == {"novasphere_x_bucket", "up", "other_total"}
