"""The OpenAPI document and its reference page as clients reach them through Envoy: the committed document at
/api/v1/openapi.json and .yaml, Swagger UI rendering it at /api/docs under the page's CSP, and live answers of the
stack (successes and errors, from the API server and from Envoy) conforming to what the document says of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devcluster import stack as devstack
from server.transport import api_docs
from tests.unit.test_openapi import check
from tests.web_browser import Browser
from tests.web_console import ARTIFACTS
from tools import gen, openapi3, openapi_examples

OPENAPI = gen.ROOT / "gen" / "openapi"
DOCUMENT: dict[str, Any] = json.loads((OPENAPI / openapi3.JSON_NAME).read_text())


@pytest.fixture(scope="module")
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


def conforms(response: httpx.Response, path: str, verb: str) -> None:
    """The response's status is one the operation lists, and its JSON body is valid against that response's schema."""
    assert response.headers["content-type"].split(";")[0] == "application/json"
    conforms_body(response.json(), response.status_code, path, verb)


def conforms_body(body: Any, status: int, path: str, verb: str) -> None:
    responses = DOCUMENT["paths"][path][verb]["responses"]
    assert str(status) in responses, (verb, path, status, body)
    described = responses[str(status)]
    if "$ref" in described:
        described = DOCUMENT["components"]["responses"][described["$ref"].rsplit("/", 1)[1]]
    check(DOCUMENT, described["content"]["application/json"]["schema"], body)


@pytest.mark.parametrize(("path", "kind"), [("/api/v1/openapi.json", "json"), ("/api/v1/openapi.yaml", "yaml")])
def test_the_committed_document_is_served(http: httpx.Client, path: str, kind: str) -> None:
    response = http.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == f"application/{kind}; charset=utf-8"
    assert response.content == (OPENAPI / f"novasphere.openapi.{kind}").read_bytes()


def test_the_reference_page_is_served_under_its_policy_with_its_assets(http: httpx.Client) -> None:
    page = http.get("/api/docs")
    script = http.get("/api/docs/swagger-ui-bundle.js")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == api_docs.DOCS_CONTENT_SECURITY_POLICY
    assert script.status_code == 200
    assert script.headers["content-type"] == "application/javascript"


def test_other_api_paths_stay_the_transcoders(http: httpx.Client) -> None:
    response = http.get("/api/v1/openapi.txt")

    assert response.status_code == 404
    assert response.json()["code"] == 5  # NOT_FOUND as google.rpc.Status JSON: Envoy's transcoder answered


def test_live_answers_conform_to_the_document(http: httpx.Client, namespace: str) -> None:
    conforms(http.get("/api/v1/wukongs", params={"namespace": namespace}), "/api/v1/wukongs", "get")
    conforms(http.get("/api/v1/tasks", params={"namespace": namespace}), "/api/v1/tasks", "get")
    conforms(http.get("/api/v1/stats", params={"namespace": namespace}), "/api/v1/stats", "get")
    conforms(http.get("/api/v1/wukongs", params={"pageSize": 501}), "/api/v1/wukongs", "get")  # 400, BadRequest
    conforms(http.get("/api/v1/wukongs", params={"pagesize": 5}), "/api/v1/wukongs", "get")  # Envoy's 400
    missing = http.get("/api/v1/wukongs/ghost", params={"namespace": namespace})
    assert missing.status_code == 404
    conforms(missing, "/api/v1/wukongs/{name}", "get")  # ErrorInfo and ResourceInfo
    # Why the vmId routes list no namespace: beside a vmId it is refused.
    beside = http.get("/api/v1/vms/some-uid", params={"namespace": namespace})
    assert beside.status_code == 400
    bad_request = next(d for d in beside.json()["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert bad_request["fieldViolations"][0]["field"] == "vmId"  # the JSON name the client sent


def test_the_reference_page_renders_every_operation(stack: devstack.Stack, browser: Browser) -> None:
    tab = browser.open()
    tab.goto(f"{stack.edge.url}/api/docs")
    tab.wait(".opblock")

    operations = sum(len(item) for item in DOCUMENT["paths"].values())
    assert tab.count(".opblock") == operations
    assert tab.text(".info .title").startswith("NovaSphere API")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(ARTIFACTS / "api-docs.png")


def test_the_example_scenario_answers_as_the_document_says(http: httpx.Client, namespace: str) -> None:
    """tools/openapi_examples.py's calls on this stack: every answer conforms, and the scenario covers what the
    committed examples show (so a change of the API's JSON that breaks them fails here)."""

    captured = openapi_examples.capture(http, namespace)

    paths = {op["operationId"]: (path, verb) for path, item in DOCUMENT["paths"].items() for verb, op in item.items()}
    for operation_id, entry in captured.items():
        for status, body in entry["responses"].items():
            conforms_body(body, int(status), *paths[operation_id])
    committed = json.loads(openapi3.EXAMPLES.read_text())
    assert {op: sorted(entry["responses"]) for op, entry in captured.items()} == {
        op: sorted(entry["responses"]) for op, entry in committed.items()
    }
    assert captured["TaskService_GetTask"]["responses"]["200"]["state"] == "SUCCEEDED"
