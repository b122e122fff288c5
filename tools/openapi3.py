"""Writes the REST API as OpenAPI 3 (gen/openapi/novasphere.openapi.json and .yaml) from the descriptor set `make gen`
builds, which holds everything REST clients see: the `google.api.http` rules (additional bindings included), the
messages with their JSON names and `field_behavior`, and the proto comments. What the protos cannot say comes from the
server's own code, imported rather than copied: who may call what (`permissions.REQUIRED`), the request limits
(paging, names, Wukong filters and sort keys), and which HTTP statuses each call can answer (see `_statuses`).

The JSON follows Envoy's gRPC-JSON transcoder as configured in envoy/novasphere_envoy/config.py: proto3 JSON mapping
(camelCase names, 64-bit integers as strings, enums as names, well-known types as their JSON forms), every
non-message field printed even when it holds its default (`always_print_primitive_fields`), server streams as
Server-Sent Events (`data: <message JSON>` per event), and errors as `google.rpc.Status` JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

from server import names, paging
from server.transport import permissions
from server.wukongs import filters, queries
from server.wukongs.status import PowerState

OPENAPI_VERSION = "3.1.0"
PACKAGE = "novasphere.v1"
JSON_NAME = "novasphere.openapi.json"
YAML_NAME = "novasphere.openapi.yaml"
EXAMPLES = Path(__file__).with_name("openapi_examples.json")
"""Requests and answers captured from a running stack by tools/openapi_examples.py."""
Schema = dict[str, Any]

_FieldType = descriptor_pb2.FieldDescriptorProto
_SCALARS: dict[int, Schema] = {
    _FieldType.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _FieldType.TYPE_FLOAT: {"type": "number", "format": "float"},
    _FieldType.TYPE_INT32: {"type": "integer", "format": "int32"},
    _FieldType.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _FieldType.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _FieldType.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    _FieldType.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    # proto3 JSON prints 64-bit integers as decimal strings (a JavaScript number cannot hold them all).
    _FieldType.TYPE_INT64: {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$"},
    _FieldType.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$"},
    _FieldType.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$"},
    _FieldType.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": r"^[0-9]+$"},
    _FieldType.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": r"^[0-9]+$"},
    _FieldType.TYPE_BOOL: {"type": "boolean"},
    _FieldType.TYPE_STRING: {"type": "string"},
    _FieldType.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WRAPPERS = {
    "DoubleValue": _FieldType.TYPE_DOUBLE,
    "FloatValue": _FieldType.TYPE_FLOAT,
    "Int64Value": _FieldType.TYPE_INT64,
    "UInt64Value": _FieldType.TYPE_UINT64,
    "Int32Value": _FieldType.TYPE_INT32,
    "UInt32Value": _FieldType.TYPE_UINT32,
    "BoolValue": _FieldType.TYPE_BOOL,
    "StringValue": _FieldType.TYPE_STRING,
    "BytesValue": _FieldType.TYPE_BYTES,
}
# The well-known types with a JSON form of their own (protobuf's JSON mapping), described once in components.
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": (
            "An instant as RFC 3339 text in UTC. The API sends whole seconds (`2026-01-02T03:04:05Z`); "
            "it accepts up to nanoseconds."
        ),
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "description": "A duration in seconds with an `s` suffix, e.g. `1.5s`.",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Field paths (camelCase, dotted for nested fields), comma-separated, e.g. `spec.cpu,labels`.",
    },
    "google.protobuf.Empty": {"type": "object", "description": "Nothing: `{}`."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {
        "type": "object",
        "required": ["@type"],
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
}
_STATUS = "google.rpc.Status"
# The detail messages `status_of` (server/transport/errors.py) packs into an error's `details`; Envoy's own replies
# have none.
_ERROR_DETAILS = (
    "google.rpc.ErrorInfo",
    "google.rpc.BadRequest",
    "google.rpc.ResourceInfo",
    "google.rpc.RetryInfo",
    "google.rpc.RequestInfo",
)
_TYPE_URL = "type.googleapis.com/"

# How each HTTP status arises; the text is the response's description. gRPC codes become HTTP statuses in Envoy's
# transcoder (google/rpc/code.proto's mapping); Envoy's own replies are in config.py's LOCAL_REPLIES.
_STATUS_TEXT = {
    400: "INVALID_ARGUMENT (a field violation in `BadRequest`; from Envoy: malformed JSON, an unknown query "
    "parameter), FAILED_PRECONDITION (not valid in the current state) or OUT_OF_RANGE (a watch cursor too old).",
    401: "UNAUTHENTICATED: no valid credentials (missing, expired or revoked token or API key).",
    403: "PERMISSION_DENIED: the caller lacks the permission this call needs.",
    404: "NOT_FOUND: the resource (or the namespace) does not exist, or the caller may not know that it exists.",
    409: "ALREADY_EXISTS (the name is taken) or ABORTED (the object changed meanwhile: read it again and retry; or "
    "REQUEST_IN_PROGRESS: the first call with this `requestId` still runs, send it again after `RetryInfo`'s delay).",
    413: "From Envoy: the request body is over the size limit.",
    429: "RESOURCE_EXHAUSTED: a rate limit (Envoy's per client address, or the API server's per user; `RetryInfo` "
    "says when to retry), or a watch client that fell behind.",
    431: "From Envoy: the request headers are over the size limit.",
    500: "INTERNAL: a fault of the API (the message carries a reference for its log).",
    503: "UNAVAILABLE: the API server or Kubernetes cannot answer now; retry after `RetryInfo`'s delay.",
    504: "DEADLINE_EXCEEDED: from Envoy, the API server did not answer in time.",
}
_EVERY_CALL = (400, 429, 431, 500, 503)
"""Any REST call: Envoy's 400 (bad JSON, unknown query parameter), 429 (per-address limit) and 431, and the server's
500 and 503 (a replica cut off from Kubernetes refuses every call)."""
_EXTRA_STATUSES: dict[str, tuple[int, ...]] = {
    # Beyond what the rules in `_statuses` derive: the RPCs that refuse callers in ways their permission entry does
    # not show (read from their servicers and the domain code they call).
    "AuthService.Login": (401,),  # LOGIN_FAILED; TOO_MANY_LOGIN_ATTEMPTS is a 429
    "AuthService.Refresh": (401,),  # an expired, revoked or reused refresh token
    "AuthService.ChangePassword": (403,),  # not with an API key
    "AuthService.RevokeSession": (404,),
    "AdminService.ListRoleBindings": (404,),  # another tenant's: tenant:manage, an unknown tenant
    "NotificationService.SendTestNotification": (404,),  # a device_id the caller has no device of
}
_IDENTIFIES_ALONE = {"vm_id": ("name", "namespace")}
"""Fields that name the resource on their own: with one in the URL, these are refused (`WukongQueries.get`)."""
_BEARER_ONLY = frozenset({"AuthService.ChangePassword"})
"""Calls a login session must make itself: an API key is refused."""


@dataclass
class _Types:
    """Every message and enum in the descriptor set by full name (no leading dot), with their comments."""

    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    """Keyed by full name, `Message.field` and `Enum.VALUE` too."""
    services: list[tuple[str, descriptor_pb2.ServiceDescriptorProto]] = field(default_factory=list)

    @classmethod
    def load(cls, descriptor_set: bytes) -> _Types:
        types = cls()
        for file in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file:
            located = {tuple(loc.path): _comment(loc) for loc in file.source_code_info.location}
            prefix = f"{file.package}." if file.package else ""
            for index, message in enumerate(file.message_type):
                types._add_message(prefix + message.name, message, (4, index), located)
            for index, enum in enumerate(file.enum_type):
                types._add_enum(prefix + enum.name, enum, (5, index), located)
            for index, service in enumerate(file.service):
                if file.package == PACKAGE:
                    types.services.append((prefix + service.name, service))
                types.comments[prefix + service.name] = located.get((6, index), "")
                for method_index, method in enumerate(service.method):
                    types.comments[f"{prefix}{service.name}.{method.name}"] = located.get(
                        (6, index, 2, method_index), ""
                    )
        return types

    def _add_message(
        self,
        name: str,
        message: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
        located: dict[tuple[int, ...], str],
    ) -> None:
        self.messages[name] = message
        self.comments[name] = located.get(path, "")
        for index, message_field in enumerate(message.field):
            self.comments[f"{name}.{message_field.name}"] = located.get((*path, 2, index), "")
        for index, nested in enumerate(message.nested_type):
            self._add_message(f"{name}.{nested.name}", nested, (*path, 3, index), located)
        for index, enum in enumerate(message.enum_type):
            self._add_enum(f"{name}.{enum.name}", enum, (*path, 4, index), located)

    def _add_enum(
        self,
        name: str,
        enum: descriptor_pb2.EnumDescriptorProto,
        path: tuple[int, ...],
        located: dict[tuple[int, ...], str],
    ) -> None:
        self.enums[name] = enum
        self.comments[name] = located.get(path, "")
        for index, value in enumerate(enum.value):
            self.comments[f"{name}.{value.name}"] = located.get((*path, 2, index), "")


def _comment(location: descriptor_pb2.SourceCodeInfo.Location) -> str:
    text = location.leading_comments or location.trailing_comments
    return " ".join(line.strip() for line in text.strip().splitlines()).strip()


def schema_name(full_name: str) -> str:
    """Our messages by their name in the package (`Wukong`, `WukongStatus.PowerState`), others by full name."""
    return full_name.removeprefix(f"{PACKAGE}.")


def _ref(full_name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{schema_name(full_name)}"}


def _is_map(message: descriptor_pb2.DescriptorProto) -> bool:
    return message.options.map_entry


def _behaviors(message_field: descriptor_pb2.FieldDescriptorProto) -> set[int]:
    return set(message_field.options.Extensions[field_behavior_pb2.field_behavior])


def _always_printed(message_field: descriptor_pb2.FieldDescriptorProto) -> bool:
    """Whether Envoy prints the field even when it holds its default (`always_print_primitive_fields`): all but a
    singular message and a field with presence (in a oneof, or proto3 `optional`)."""
    singular_message = (
        message_field.type == _FieldType.TYPE_MESSAGE and message_field.label != _FieldType.LABEL_REPEATED
    )
    return not singular_message and not message_field.HasField("oneof_index")


@dataclass
class _Builder:
    types: _Types
    sent: frozenset[str]
    """The messages clients send (`_sent_messages`): every other one is only ever printed by Envoy."""
    schemas: dict[str, Schema] = field(default_factory=dict)

    def message(self, full_name: str) -> Schema:
        """A reference to the message's schema, built (with everything it uses) on first use."""
        name = schema_name(full_name)
        if name not in self.schemas:
            if full_name in _WELL_KNOWN:
                self.schemas[name] = _WELL_KNOWN[full_name]
            elif full_name.startswith("google.protobuf.") and full_name.removeprefix("google.protobuf.") in _WRAPPERS:
                self.schemas[name] = dict(_SCALARS[_WRAPPERS[full_name.removeprefix("google.protobuf.")]])
            else:
                self.schemas[name] = {}  # placeholder: recursive messages refer to themselves
                self.schemas[name] = self.object(full_name, exclude=frozenset())
        return _ref(full_name)

    def object(self, full_name: str, *, exclude: frozenset[str]) -> Schema:
        """The message as a JSON object, without the fields named in `exclude` (proto names)."""
        message = self.types.messages[full_name]
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for message_field in message.field:
            if message_field.name in exclude:
                continue
            properties[message_field.json_name] = self.field(full_name, message_field)
            if field_behavior_pb2.REQUIRED in _behaviors(message_field) or (
                full_name not in self.sent and _always_printed(message_field)
            ):
                required.append(message_field.json_name)
        schema: Schema = {"type": "object"}
        if description := self.types.comments.get(full_name):
            schema["description"] = description
        if full_name == _STATUS:
            properties["details"] = self._status_details()
            required = ["code", "message"]
        if required:
            schema["required"] = required
        schema["properties"] = properties
        return schema

    def field(self, owner: str, message_field: descriptor_pb2.FieldDescriptorProto) -> Schema:
        schema = self.value(message_field)
        if message_field.label == _FieldType.LABEL_REPEATED and not self.map_entry(message_field):
            schema = {"type": "array", "items": schema}
        behaviors = _behaviors(message_field)
        extra: Schema = {}
        if description := self.types.comments.get(f"{owner}.{message_field.name}"):
            extra["description"] = description
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            extra["readOnly"] = True
        if field_behavior_pb2.INPUT_ONLY in behaviors:
            extra["writeOnly"] = True
        if not extra:
            return schema
        if "$ref" in schema:  # OpenAPI 3.0 and many generators ignore a reference's siblings
            return {"allOf": [schema], **extra}
        return {**schema, **extra}

    def value(self, message_field: descriptor_pb2.FieldDescriptorProto) -> Schema:
        """One value of the field (an element, for a repeated one)."""
        if message_field.type == _FieldType.TYPE_ENUM:
            return self.enum(message_field.type_name.lstrip("."))
        if message_field.type != _FieldType.TYPE_MESSAGE:
            return dict(_SCALARS[message_field.type])
        if entry := self.map_entry(message_field):
            key, value = entry.field
            property_names = _SCALARS[key.type]
            values = self.value(value)
            schema: Schema = {"type": "object", "additionalProperties": values}
            if property_names.get("type") != "string":
                schema["description"] = f"Keys are {property_names.get('format', property_names['type'])} as text."
            return schema
        return self.message(message_field.type_name.lstrip("."))

    def enum(self, full_name: str) -> Schema:
        name = schema_name(full_name)
        if name not in self.schemas:
            enum = self.types.enums[full_name]
            lines = [self.types.comments.get(full_name, "")]
            lines += [
                f"- `{value.name}`: {text}"
                for value in enum.value
                if (text := self.types.comments.get(f"{full_name}.{value.name}"))
            ]
            self.schemas[name] = {
                "type": "string",
                "description": "\n".join(line for line in lines if line),
                "enum": [value.name for value in enum.value],
            }
        return _ref(full_name)

    def map_entry(self, message_field: descriptor_pb2.FieldDescriptorProto) -> descriptor_pb2.DescriptorProto | None:
        if message_field.type != _FieldType.TYPE_MESSAGE:
            return None
        message = self.types.messages.get(message_field.type_name.lstrip("."))
        return message if message is not None and _is_map(message) else None

    def _status_details(self) -> Schema:
        """`details` as the detail messages the API sends, told apart by their `@type`."""
        choices: list[Schema] = []
        mapping: dict[str, str] = {}
        for detail in _ERROR_DETAILS:
            self.message(detail)
            name = f"{schema_name(detail)}.Packed"
            self.schemas[name] = {
                "allOf": [
                    _ref(detail),
                    {
                        "type": "object",
                        "required": ["@type"],
                        "properties": {"@type": {"type": "string", "enum": [_TYPE_URL + detail]}},
                    },
                ]
            }
            choices.append({"$ref": f"#/components/schemas/{name}"})
            mapping[_TYPE_URL + detail] = f"#/components/schemas/{name}"
        return {
            "type": "array",
            "description": "What a client can act on: `ErrorInfo` (always, with a stable `reason`), `BadRequest` "
            "(the field violations), `ResourceInfo` (what was not found or exists), `RetryInfo` (when to retry), "
            "`RequestInfo` (the request id to quote: the access logs of Envoy and the API server list the call under "
            "it). Envoy's own replies have none.",
            "items": {"oneOf": choices, "discriminator": {"propertyName": "@type", "mapping": mapping}},
        }


@dataclass(frozen=True)
class _Binding:
    """One `google.api.http` rule of a method: its own REST operation."""

    service: str
    method: descriptor_pb2.MethodDescriptorProto
    verb: str
    template: str
    body: str
    path_fields: tuple[str, ...]
    """The proto field paths the URL carries (`wukong.name`), in URL order."""
    primary: bool

    @property
    def rpc(self) -> str:
        return f"{self.service.removeprefix(f'{PACKAGE}.')}.{self.method.name}"

    @property
    def streaming(self) -> bool:
        return self.method.server_streaming


_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


def _bindings(types: _Types) -> Iterator[list[_Binding]]:
    """Each REST-mapped method's bindings, the primary first."""
    for service_name, service in types.services:
        for method in service.method:
            rule = method.options.Extensions[annotations_pb2.http]
            rules = [rule, *rule.additional_bindings]
            bindings = [_binding(service_name, method, r, primary=r is rule) for r in rules if r.WhichOneof("pattern")]
            if bindings:
                yield bindings


def _binding(
    service: str, method: descriptor_pb2.MethodDescriptorProto, rule: http_pb2.HttpRule, *, primary: bool
) -> _Binding:
    verb = rule.WhichOneof("pattern")
    if verb is None or verb == "custom":
        raise ValueError(f"{method.name}: unsupported HTTP rule {rule}")
    template: str = getattr(rule, verb)
    return _Binding(service, method, verb, template, rule.body, tuple(_VARIABLE.findall(template)), primary=primary)


def _sent_messages(types: _Types, bindings: list[list[_Binding]]) -> frozenset[str]:
    """Every message a client can send: the requests and what their fields hold, but output-only fields."""
    sent: set[str] = set()
    pending = [binding.method.input_type.lstrip(".") for group in bindings for binding in group]
    while pending:
        name = pending.pop()
        if name in sent or name not in types.messages:
            continue
        sent.add(name)
        pending += [
            f.type_name.lstrip(".")
            for f in types.messages[name].field
            if f.type == _FieldType.TYPE_MESSAGE and field_behavior_pb2.OUTPUT_ONLY not in _behaviors(f)
        ]
    return frozenset(sent)


@dataclass
class _Generator:
    types: _Types
    bindings: list[list[_Binding]]
    builder: _Builder

    def document(self) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        operations: dict[str, tuple[_Binding, dict[str, Any]]] = {}
        for bindings in self.bindings:
            bound_anywhere = frozenset(path for b in bindings for path in b.path_fields)
            for binding in bindings:
                operation_id = self._operation_id(binding, bindings)
                operation = self.operation(binding, operation_id, bound_anywhere)
                operations[operation_id] = (binding, operation)
                paths.setdefault(self._path(binding), {})[binding.verb] = operation
        self._link(operations)
        self.builder.message(_STATUS)
        return {
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": "NovaSphere API",
                "version": "v1",
                "description": "Wukong virtual machines on Kubernetes, through Envoy's REST door: JSON in proto3 "
                "JSON form (camelCase names, 64-bit integers as strings, enums by name, timestamps as RFC 3339), "
                "errors as `google.rpc.Status`, watches as Server-Sent Events. Generated from proto/ by `make gen`.",
            },
            "tags": [
                {"name": schema_name(name), "description": self.types.comments.get(name, "")}
                for name, _ in self.types.services
            ],
            "security": [{"bearerAuth": []}, {"apiKey": []}],
            "paths": dict(sorted(paths.items())),
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "An access token from `AuthService.Login` or `AuthService.Refresh`.",
                    },
                    "apiKey": {
                        "type": "apiKey",
                        "in": "header",
                        "name": "x-api-key",
                        "description": "An API key from `AuthService.CreateApiKey` (`nsk_<id>_<secret>`).",
                    },
                },
                "responses": {
                    _response_name(status): {
                        "description": text,
                        "content": {"application/json": {"schema": _ref(_STATUS)}},
                    }
                    for status, text in _STATUS_TEXT.items()
                },
                "schemas": dict(sorted(self.builder.schemas.items())),
            },
        }

    def _path(self, binding: _Binding) -> str:
        """The URL template with each variable named by its own last segment (`{wukong.name}` → `{name}`):
        generators cannot name a parameter with a dot. The URL Envoy matches is the same."""
        return _VARIABLE.sub(lambda match: "{" + self._parameter_name(binding, match.group(1)) + "}", binding.template)

    def _parameter_name(self, binding: _Binding, path: str) -> str:
        _, message_field = self._resolve(binding.method.input_type.lstrip("."), path)
        return message_field.json_name

    def _resolve(self, message: str, path: str) -> tuple[str, descriptor_pb2.FieldDescriptorProto]:
        """The message owning the last field of a dotted field path, and that field."""
        *parents, last = path.split(".")
        for part in parents:
            message = next(f for f in self.types.messages[message].field if f.name == part).type_name.lstrip(".")
        return message, next(f for f in self.types.messages[message].field if f.name == last)

    def _operation_id(self, binding: _Binding, bindings: list[_Binding]) -> str:
        """`Service_Method` for the primary binding; an alternative adds what identifies it (`…ByVmId`)."""
        base = binding.rpc.replace(".", "_")
        if binding.primary:
            return base
        own = [p for p in binding.path_fields if p not in bindings[0].path_fields]
        if own:
            name = self._parameter_name(binding, own[0])
            return f"{base}By{name[:1].upper()}{name[1:]}"
        return f"{base}{bindings.index(binding) + 1}"

    def operation(self, binding: _Binding, operation_id: str, bound_anywhere: frozenset[str]) -> dict[str, Any]:
        """`bound_anywhere`: the fields some binding of the method takes from its URL; the others cannot give them
        (with both, the server refuses the call), so they list only their own."""
        request = binding.method.input_type.lstrip(".")
        unused = bound_anywhere | {f for p in binding.path_fields for f in _IDENTIFIES_ALONE.get(p, ())}
        comment = self.types.comments.get(f"{binding.service}.{binding.method.name}", "")
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "tags": [schema_name(binding.service)],
            "summary": _first_sentence(comment) or binding.method.name,
            "description": comment,
        }
        parameters = [self._path_parameter(binding, path) for path in binding.path_fields]
        if binding.body != "*":
            parameters += self._query_parameters(request, unused | {binding.body}, prefix="")
        if parameters:
            operation["parameters"] = parameters
        if binding.body:
            operation["requestBody"] = self._request_body(binding, operation_id, unused)
        required = permissions.REQUIRED[f"/{binding.service}/{binding.method.name}"]
        if required == permissions.PUBLIC:
            operation["security"] = []
        elif binding.rpc in _BEARER_ONLY:
            operation["security"] = [{"bearerAuth": []}]
        responses: dict[str, Any] = {"200": self._success(binding)}
        for status in _statuses(binding, required, has_namespace=self._has_namespace(request)):
            responses[str(status)] = {"$ref": f"#/components/responses/{_response_name(status)}"}
        operation["responses"] = responses
        return operation

    def _has_namespace(self, request: str) -> bool:
        return any(f.name == "namespace" for f in self.types.messages[request].field)

    def _path_parameter(self, binding: _Binding, path: str) -> Schema:
        owner, message_field = self._resolve(binding.method.input_type.lstrip("."), path)
        schema = self.builder.field(owner, message_field)
        description = schema.pop("description", "")
        schema = {**schema, **_constraints(owner, message_field, in_path_of=self._path(binding))}
        if schema.get("type") == "string":
            # An empty segment is no value: `/tasks//cancel` reaches another route (found by schemathesis).
            schema.setdefault("minLength", 1)
        parameter: Schema = {"name": message_field.json_name, "in": "path", "required": True, "schema": schema}
        if description:
            parameter["description"] = description
        return parameter

    def _query_parameters(self, message: str, exclude: frozenset[str], *, prefix: str) -> list[Schema]:
        """The request fields neither in a URL nor in the body: query parameters, nested messages' fields dotted."""
        parameters = []
        for message_field in self.types.messages[message].field:
            proto_path = prefix + message_field.name
            if proto_path in exclude or field_behavior_pb2.OUTPUT_ONLY in _behaviors(message_field):
                continue
            nested = message_field.type_name.lstrip(".")
            if (
                message_field.type == _FieldType.TYPE_MESSAGE
                and nested.startswith(f"{PACKAGE}.")
                and not self.builder.map_entry(message_field)
            ):
                parameters += self._query_parameters(nested, exclude, prefix=f"{proto_path}.")
                continue
            schema = self.builder.field(message, message_field)
            description = schema.pop("description", "")
            schema.pop("writeOnly", None)
            schema = {**schema, **_constraints(message, message_field, in_path_of=None)}
            parameter: Schema = {"name": _json_path(prefix, message_field), "in": "query", "schema": schema}
            if schema.get("type") == "array":
                # `status=running,stopped` (one value, split by the server) or `names=a&names=b` (repeated).
                parameter["style"], parameter["explode"] = "form", message_field.label == _FieldType.LABEL_REPEATED
            if description:
                parameter["description"] = description
            if field_behavior_pb2.REQUIRED in _behaviors(message_field):
                parameter["required"] = True
            parameters.append(parameter)
        return parameters

    def _request_body(self, binding: _Binding, operation_id: str, unused: frozenset[str]) -> Schema:
        request = binding.method.input_type.lstrip(".")
        if binding.body != "*":
            _, message_field = self._resolve(request, binding.body)
            return {"required": True, "content": {"application/json": {"schema": self.builder.value(message_field)}}}
        top_level = unused & {f.name for f in self.types.messages[request].field}
        if not top_level:
            schema = self.builder.message(request)
        else:
            name = operation_id.split("_", 1)[1] + "Body"
            self.builder.schemas[name] = self.builder.object(request, exclude=top_level)
            schema = {"$ref": f"#/components/schemas/{name}"}
        return {"content": {"application/json": {"schema": schema}}}

    def _success(self, binding: _Binding) -> Schema:
        output = binding.method.output_type.lstrip(".")
        schema = self.builder.message(output)
        if not binding.streaming:
            return {"description": "OK", "content": {"application/json": {"schema": schema}}}
        name = schema_name(output)
        return {
            "description": f"A stream of Server-Sent Events, one per `{name}`: a `data:` line with the message as "
            f"JSON (the `{name}` schema), then an empty line. It ends when the server ends the stream; an error "
            "that arises once the stream has begun ends it without a status.",
            "content": {
                "text/event-stream": {
                    # One event, as OpenAPI before 3.2 describes a stream (3.2's itemSchema): its `data` is the
                    # message as JSON (JSON Schema's contentMediaType/contentSchema, which clients and fuzzers read).
                    "schema": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "data": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": schema,
                                "description": f"The `{name}` as JSON.",
                            },
                            "event": {"type": "string", "description": "Always `message` (the default)."},
                        },
                    },
                }
            },
        }

    def _link(self, operations: dict[str, tuple[_Binding, dict[str, Any]]]) -> None:
        """OpenAPI links from each call that makes or acts on a resource to the calls on what it returns: a create
        to the get, update, operations and delete of the new object, an operation to its task. A target qualifies
        when every parameter it needs is in the response (top level, or one message field down)."""
        getters = {
            binding.method.output_type: self._path(binding)
            for binding, _ in operations.values()
            if binding.verb == "get" and binding.path_fields and not binding.streaming
        }
        for source_id, (source, operation) in operations.items():
            if source.verb == "get" or source.streaming:
                continue
            fields = self._response_fields(source.method.output_type.lstrip("."))
            prefixes = [self._path(source) + "/{"]
            if getter := getters.get(source.method.output_type):
                prefixes.append(getter)
            links = {}
            for target_id, (target, target_operation) in operations.items():
                target_path = self._path(target)
                if target_id == source_id or not any(target_path.startswith(p) for p in prefixes):
                    continue
                wanted = [p["name"] for p in target_operation.get("parameters", []) if p["in"] == "path"]
                if not wanted or any(name not in fields for name in wanted):
                    continue
                parameters = {name: f"$response.body#/{fields[name]}" for name in wanted}
                if "namespace" in fields and any(
                    p["name"] == "namespace" and p["in"] == "query" for p in target_operation.get("parameters", [])
                ):
                    parameters["namespace"] = f"$response.body#/{fields['namespace']}"
                links[target_id] = {"operationId": target_id, "parameters": parameters}
            if links:
                operation["responses"]["200"]["links"] = dict(sorted(links.items()))

    def _response_fields(self, message: str) -> dict[str, str]:
        """JSON name → JSON pointer of the response's scalar fields, top level first, then one message down."""
        found: dict[str, str] = {}
        nested: list[tuple[str, str]] = []
        for message_field in self.types.messages[message].field:
            if message_field.label == _FieldType.LABEL_REPEATED:
                continue
            if message_field.type == _FieldType.TYPE_MESSAGE:
                nested.append((message_field.json_name, message_field.type_name.lstrip(".")))
            else:
                found[message_field.json_name] = message_field.json_name
        for parent, type_name in nested:
            for message_field in self.types.messages.get(type_name, descriptor_pb2.DescriptorProto()).field:
                if message_field.type != _FieldType.TYPE_MESSAGE and message_field.label != _FieldType.LABEL_REPEATED:
                    found.setdefault(message_field.json_name, f"{parent}/{message_field.json_name}")
        return found


def _json_path(prefix: str, message_field: descriptor_pb2.FieldDescriptorProto) -> str:
    """A nested query parameter's name: its proto path with camelCase segments (`spec.cpuCores`)."""
    camel = [re.sub(r"_([a-z])", lambda m: m.group(1).upper(), part) for part in prefix.split(".") if part]
    return ".".join([*camel, message_field.json_name])


def _first_sentence(text: str) -> str:
    sentence = re.split(r"(?<=[.:;])\s", text, maxsplit=1)[0]
    return sentence.rstrip(".:;")


def _response_name(status: int) -> str:
    return f"Error{status}"


_WUKONG_NAME = {"pattern": names.DNS_LABEL_PATTERN, "maxLength": names.WUKONG_NAME_MAX}
_WUKONG_PATHS = ("/api/v1/wukongs/{name}", "/api/v1/watch/wukongs/{name}")


def _constraints(message: str, message_field: descriptor_pb2.FieldDescriptorProto, *, in_path_of: str | None) -> Schema:
    """What the server checks about a request field beyond its type (page sizes, names, filter values)."""
    short = f"{schema_name(message)}.{message_field.name}"
    if message_field.name == "page_size":
        return {"minimum": 0, "maximum": paging.MAX_PAGE_SIZE, "default": 0}
    if message_field.name == "namespace":
        return {"pattern": "^(" + names.DNS_LABEL_PATTERN.strip("^$") + ")?$", "maxLength": names.DNS_LABEL_MAX}
    if in_path_of is not None and message_field.name == "name" and in_path_of.startswith(_WUKONG_PATHS):
        return dict(_WUKONG_NAME)
    if short in ("ListWukongsRequest.status", "WatchWukongRequest.status"):
        return {
            "type": "array",
            "items": {"type": "string", "enum": [state.name.lower() for state in PowerState]},
        }
    if short in ("ListWukongsRequest.name_like", "WatchWukongRequest.name_like"):
        return {"maxLength": filters.NAME_LIKE_MAX}
    if short == "ListWukongsRequest.sort_by":
        return {"enum": ["", *queries.SORT_FIELDS]}
    if short == "ListWukongsRequest.sort_order":
        return {"enum": ["", *queries.SORT_ORDERS]}
    return {}


def _statuses(binding: _Binding, required: str, *, has_namespace: bool) -> list[int]:
    """The HTTP statuses besides 200 a call can answer, by rules read from the server and Envoy:
    - every call: `_EVERY_CALL`; unary ones also 504 (Envoy's route timeout; streams have none);
    - 401 unless public, 403 when the call needs a permission (not just a caller);
    - 404 when the URL names a resource or the request names a namespace (NAMESPACE_NOT_FOUND);
    - 409 for every call that writes (ALREADY_EXISTS, ETAG_MISMATCH, OBJECT_CHANGED from a Kubernetes conflict, and
      REQUEST_IN_PROGRESS while the first call with the same request id runs);
    - 413 when there is a request body;
    - plus `_EXTRA_STATUSES`, what a call's own code adds."""
    statuses = set(_EVERY_CALL)
    if not binding.streaming:
        statuses.add(504)
    if required != permissions.PUBLIC:
        statuses.add(401)
    if required not in (permissions.PUBLIC, permissions.AUTHENTICATED):
        statuses.add(403)
    if binding.path_fields or has_namespace:
        statuses.add(404)
    if binding.verb != "get":
        statuses.add(409)
    if binding.body:
        statuses.add(413)
    statuses.update(_EXTRA_STATUSES.get(binding.rpc, ()))
    return sorted(statuses)


def document(descriptor_set: bytes, examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    types = _Types.load(descriptor_set)
    bindings = list(_bindings(types))
    built = _Generator(types, bindings, _Builder(types, _sent_messages(types, bindings))).document()
    _add_examples(built, examples)
    return built


def _add_examples(built: dict[str, Any], examples: dict[str, dict[str, Any]]) -> None:
    """Puts the captured requests and answers (tools/openapi_examples.py) where they belong: a request body's and a
    success's on the operation, an error's on the shared error response, named after the operation."""
    by_id = {op["operationId"]: op for item in built["paths"].values() for op in item.values()}
    for operation_id, captured in sorted(examples.items()):
        operation = by_id[operation_id]
        if "request" in captured:
            operation["requestBody"]["content"]["application/json"]["example"] = captured["request"]
        for status, body in sorted(captured["responses"].items()):
            if status == "200":
                operation["responses"]["200"]["content"]["application/json"]["example"] = body
                continue
            content = built["components"]["responses"][_response_name(int(status))]["content"]["application/json"]
            content.setdefault("examples", {})[operation_id] = {"summary": f"from {operation_id}", "value": body}


def write(descriptor_set: Path, out: Path, examples: Path = EXAMPLES) -> None:
    """Writes the document as JSON and YAML into the folder `out`."""
    built = document(descriptor_set.read_bytes(), json.loads(examples.read_text()))
    (out / JSON_NAME).write_text(json.dumps(built, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / YAML_NAME).write_text(
        yaml.safe_dump(built, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8"
    )
