"""The OpenAPI 3 document `make gen` writes (gen/openapi/): a valid document that code generators and fuzzers can use
as it is, with every REST rule of the protos, the server's limits, the errors each call can answer, and the fields
vmoperator ignores saying so, as the proto comments do."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from openapi_spec_validator import validate

from server import names, paging
from server.transport import permissions
from server.wukongs import queries
from server.wukongs.status import PowerState
from tools import openapi3

GEN = Path(__file__).resolve().parents[2] / "gen"
DOCUMENT = GEN / "openapi" / "novasphere.openapi.json"
DESCRIPTOR = GEN / "descriptor" / "novasphere.binpb"
VERBS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for verb, operation in item.items():
            yield path, verb, operation


def by_id(document: dict[str, Any], operation_id: str) -> dict[str, Any]:
    return next(op for _, _, op in operations(document) if op["operationId"] == operation_id)


def http_rules() -> Iterator[tuple[str, str, str]]:
    """(gRPC method path, verb, URL template) of every `google.api.http` rule in the descriptor set."""
    for file in descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes()).file:
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                for bound in (rule, *rule.additional_bindings):
                    if verb := bound.WhichOneof("pattern"):
                        yield f"/{file.package}.{service.name}/{method.name}", verb, getattr(bound, verb)


def check(document: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """Raises unless `value` is valid against `schema`, a schema of `document` (its references resolved there)."""
    rooted = {**schema, "components": document["components"]}
    jsonschema.Draft7Validator(rooted, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(value)


def _shape(template: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", template)


def test_the_document_is_valid_openapi_3(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.")
    validate(openapi)


def test_the_yaml_form_holds_the_same_document(openapi: dict[str, Any]) -> None:
    assert yaml.safe_load(DOCUMENT.with_suffix(".yaml").read_text()) == openapi


def test_every_rest_rule_of_the_protos_is_one_operation(openapi: dict[str, Any]) -> None:
    rules = sorted((verb, _shape(template)) for _, verb, template in http_rules())
    described = sorted((verb, _shape(path)) for path, verb, _ in operations(openapi))

    assert described == rules
    assert len({op["operationId"] for _, _, op in operations(openapi)}) == len(described)


def test_path_parameters_have_plain_names_that_the_path_declares(openapi: dict[str, Any]) -> None:
    for path, verb, operation in operations(openapi):
        in_path = re.findall(r"\{([^}]*)\}", path)
        declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name) for name in in_path), path
        assert sorted(declared) == sorted(in_path), (verb, path)


def test_alternative_routes_list_only_their_own_parameters(openapi: dict[str, Any]) -> None:
    get_by_name = [p["name"] for p in openapi["paths"]["/api/v1/wukongs/{name}"]["get"]["parameters"]]
    get_by_vm_id = [p["name"] for p in openapi["paths"]["/api/v1/vms/{vmId}"]["get"]["parameters"]]
    start_by_name = openapi["paths"]["/api/v1/wukongs/{name}/start"]["post"]

    assert get_by_name == ["name", "namespace", "cursor", "view"]
    # a vmId names the Wukong alone: a namespace beside it is refused
    assert get_by_vm_id == ["vmId", "cursor", "view"]
    assert start_by_name["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StartWukongBody"
    }
    assert set(openapi["components"]["schemas"]["StartWukongBody"]["properties"]) == {
        "namespace",
        "requestId",
        "validateOnly",
    }
    assert set(openapi["components"]["schemas"]["StartWukongByVmIdBody"]["properties"]) == {"requestId", "validateOnly"}
    assert openapi["paths"]["/api/v1/vms/{vmId}"]["get"]["operationId"] == "WukongService_GetWukongByVmId"


def test_the_view_of_a_get_is_a_query_parameter_taking_the_enum_value_names(openapi: dict[str, Any]) -> None:
    (view,) = [p for p in openapi["paths"]["/api/v1/wukongs/{name}"]["get"]["parameters"] if p["name"] == "view"]

    assert (view["in"], view["schema"]) == ("query", {"allOf": [{"$ref": "#/components/schemas/WukongView"}]})
    assert openapi["components"]["schemas"]["WukongView"]["enum"] == [
        "WUKONG_VIEW_UNSPECIFIED",
        "WUKONG_VIEW_BASIC",
        "WUKONG_VIEW_FULL",
    ]
    assert "WUKONG_VIEW_FULL" in view["description"]  # what leaving it out means


def test_no_operation_has_a_catch_all_response_and_every_error_is_a_status(openapi: dict[str, Any]) -> None:
    for path, verb, operation in operations(openapi):
        assert "default" not in operation["responses"], (verb, path)
        for status, response in operation["responses"].items():
            if status != "200":
                assert response == {"$ref": f"#/components/responses/Error{status}"}, (verb, path, status)
    for response in openapi["components"]["responses"].values():
        assert list(response["content"]) == ["application/json"]
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/google.rpc.Status"}


def test_error_details_are_told_apart_by_their_type(openapi: dict[str, Any]) -> None:
    details = openapi["components"]["schemas"]["google.rpc.Status"]["properties"]["details"]["items"]

    assert details["discriminator"]["propertyName"] == "@type"
    assert sorted(details["discriminator"]["mapping"]) == [
        "type.googleapis.com/google.rpc.BadRequest",
        "type.googleapis.com/google.rpc.ErrorInfo",
        "type.googleapis.com/google.rpc.RequestInfo",
        "type.googleapis.com/google.rpc.ResourceInfo",
        "type.googleapis.com/google.rpc.RetryInfo",
    ]


@pytest.mark.parametrize(
    ("operation_id", "statuses"),
    [
        ("WukongService_ListWukongs", ["200", "400", "401", "403", "404", "429", "431", "500", "503", "504"]),
        (
            "WukongService_CreateWukong",
            ["200", "400", "401", "403", "404", "409", "413", "429", "431", "500", "503", "504"],
        ),
        ("WukongService_WatchWukong", ["200", "400", "401", "403", "404", "429", "431", "500", "503"]),
        ("AdminService_ListRoles", ["200", "400", "401", "403", "429", "431", "500", "503", "504"]),
        ("AuthService_Me", ["200", "400", "401", "429", "431", "500", "503", "504"]),
        ("AuthService_Login", ["200", "400", "401", "409", "413", "429", "431", "500", "503", "504"]),
    ],
)
def test_each_call_lists_the_statuses_it_can_answer(
    openapi: dict[str, Any], operation_id: str, statuses: list[str]
) -> None:
    assert list(by_id(openapi, operation_id)["responses"]) == statuses


def test_calls_that_need_a_caller_ask_for_a_token_or_an_api_key(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "x-api-key"}
    assert openapi["security"] == [{"bearerAuth": []}, {"apiKey": []}]
    rpc_of = {(verb, _shape(template)): rpc for rpc, verb, template in http_rules()}
    for path, verb, operation in operations(openapi):
        public = permissions.REQUIRED[rpc_of[verb, _shape(path)]] == permissions.PUBLIC
        assert (operation.get("security") == []) == public, operation["operationId"]
        if not public:
            assert "401" in operation["responses"], operation["operationId"]
    assert by_id(openapi, "AuthService_ChangePassword")["security"] == [{"bearerAuth": []}]


def test_server_limits_are_constraints(openapi: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in openapi["paths"]["/api/v1/wukongs"]["get"]["parameters"]}
    name = openapi["paths"]["/api/v1/wukongs/{name}"]["get"]["parameters"][0]

    assert parameters["pageSize"]["schema"]["maximum"] == paging.MAX_PAGE_SIZE
    assert parameters["pageSize"]["schema"]["minimum"] == 0
    assert parameters["status"]["schema"]["items"]["enum"] == [s.name.lower() for s in PowerState]
    assert (parameters["status"]["style"], parameters["status"]["explode"]) == ("form", False)
    assert parameters["sortBy"]["schema"]["enum"] == ["", *queries.SORT_FIELDS]
    assert parameters["sortOrder"]["schema"]["enum"] == ["", "asc", "desc"]
    assert name["schema"] == {
        "type": "string",
        "pattern": names.DNS_LABEL_PATTERN,
        "maxLength": names.WUKONG_NAME_MAX,
        "minLength": 1,
    }
    # an empty path segment is no value (`/tasks//cancel` would reach another route)
    for _, _, operation in operations(openapi):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["schema"].get("type") == "string":
                assert parameter["schema"]["minLength"] >= 1, (operation["operationId"], parameter["name"])


def test_a_created_wukong_links_to_the_calls_on_it_and_an_operation_to_its_task(openapi: dict[str, Any]) -> None:
    created = by_id(openapi, "WukongService_CreateWukong")["responses"]["200"]["links"]
    started = by_id(openapi, "WukongService_StartWukong")["responses"]["200"]["links"]

    for target in ("GetWukong", "UpdateWukong", "StartWukong", "StopWukong", "DeleteWukong"):
        assert created[f"WukongService_{target}"]["parameters"]["name"] == "$response.body#/name"
    assert created["WukongService_GetWukong"]["parameters"]["namespace"] == "$response.body#/namespace"
    assert started["TaskService_GetTask"] == {
        "operationId": "TaskService_GetTask",
        "parameters": {"id": "$response.body#/id"},
    }


def test_watches_are_server_sent_events_of_their_message(openapi: dict[str, Any]) -> None:
    for path, _, operation in operations(openapi):
        content = operation["responses"]["200"]["content"]
        assert list(content) == (["text/event-stream"] if path.startswith("/api/v1/watch/") else ["application/json"])
    watch = openapi["paths"]["/api/v1/watch/wukongs"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    data = watch["schema"]["properties"]["data"]
    assert (data["contentMediaType"], data["contentSchema"]) == (
        "application/json",
        {"$ref": "#/components/schemas/WukongEvent"},
    )


def test_enums_and_timestamps_are_described_once(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    text = json.dumps({name: schema for name, schema in schemas.items() if name != "google.protobuf.Timestamp"})

    assert '"date-time"' not in text
    assert schemas["WukongStatus.PowerState"]["enum"][:2] == ["POWER_STATE_UNSPECIFIED", "PROVISIONING"]
    assert schemas["Wukong"]["properties"]["createTime"] == {
        "allOf": [{"$ref": "#/components/schemas/google.protobuf.Timestamp"}],
        "description": schemas["Wukong"]["properties"]["createTime"]["description"],
        "readOnly": True,
    }


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ("WukongSpec", "osImage"),
        ("Disk", "boot"),
        ("HighAvailability", "restartPolicy"),
        ("HighAvailability", "antiAffinity"),
        ("StartStrategy", "runStrategy"),
    ],
)
def test_fields_vmoperator_ignores_say_so(openapi: dict[str, Any], schema: str, field: str) -> None:
    assert "Ignored by vmoperator" in openapi["components"]["schemas"][schema]["properties"][field]["description"]


def test_the_captured_examples_are_in_the_document_and_valid(openapi: dict[str, Any]) -> None:
    examples = 0
    for _, _, operation in operations(openapi):
        for media in [
            *operation.get("requestBody", {}).get("content", {}).values(),
            *operation["responses"]["200"]["content"].values(),
        ]:
            if "example" in media:
                check(openapi, media["schema"], media["example"])
                examples += 1
    for response in openapi["components"]["responses"].values():
        media = response["content"]["application/json"]
        for example in media.get("examples", {}).values():
            check(openapi, media["schema"], example["value"])
            examples += 1
    captured = json.loads(openapi3.EXAMPLES.read_text())

    assert examples == sum(len(entry["responses"]) + ("request" in entry) for entry in captured.values())
    assert "example" in by_id(openapi, "WukongService_CreateWukong")["requestBody"]["content"]["application/json"]


def test_what_envoy_always_prints_is_required_in_answers_only(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]

    assert {"id", "state", "progress", "cancellable"} <= set(schemas["Task"]["required"])  # only ever an answer
    assert schemas["Wukong"]["required"] == ["spec"]  # also sent by clients: only what the proto requires
    assert "required" not in schemas["StartWukongBody"]
