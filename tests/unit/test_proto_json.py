"""The API's JSON rules that follow from the proto files alone: int64 (a JSON string) only where README lists it, and
every input-only field with presence, so Envoy (which prints unset strings as "") never shows one in a response."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

import novasphere.v1

README = Path(__file__).resolve().parents[2] / "README.md"
INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64}
INT64 |= {FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64}


def fields() -> Iterator[FieldDescriptor]:
    def walk(message: Descriptor) -> Iterator[FieldDescriptor]:
        yield from message.fields
        for nested in message.nested_types:
            yield from walk(nested)

    for module in pkgutil.iter_modules(novasphere.v1.__path__):
        if module.name.endswith("_pb2"):
            file = importlib.import_module(f"novasphere.v1.{module.name}").DESCRIPTOR
            for message in file.message_types_by_name.values():
                yield from walk(message)


def test_int64_fields_are_the_byte_counters_readme_lists() -> None:
    assert {f.full_name for f in fields() if f.type in INT64} == {
        "novasphere.v1.ConsoleSession.bytes_to_client",
        "novasphere.v1.ConsoleSession.bytes_from_client",
        "novasphere.v1.MemoryUsage.used_bytes",
        "novasphere.v1.MemoryUsage.guest_bytes",
    }
    readme = README.read_text()
    assert "`ConsoleSession.bytesToClient`/`bytesFromClient`" in readme
    assert "`MemoryUsage.usedBytes`/`guestBytes`" in readme


def test_every_input_only_field_has_presence() -> None:
    input_only = [
        f
        for f in fields()
        if field_behavior_pb2.INPUT_ONLY in f.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    ]
    assert {f.full_name for f in input_only} == {
        "novasphere.v1.CloudInitUser.password",
        "novasphere.v1.CloudInitUser.password_hash",
        "novasphere.v1.CreateUserRequest.password",
        "novasphere.v1.UpdateUserRequest.password",
    }
    assert [f.full_name for f in input_only if not f.has_presence] == []
