"""The API stays compatible for apps that lag behind the server: `buf lint` on proto/ and `buf breaking` against the
released baseline (proto/baseline/, cut by `make api-baseline` at a release). buf is npm's @bufbuild/buf, installed
with the test tools (tests/browser/); both read the descriptor set `make gen` compiles, with proto/buf.yaml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from tools import api_baseline

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "tests" / "browser" / "node_modules" / ".bin" / "buf"
CONFIG = ROOT / "proto" / "buf.yaml"
OURS = "novasphere"  # buf checks our files only, not the google/ ones the descriptor set includes


def buf(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [str(BUF), *map(str, args), "--path", OURS, "--config", str(CONFIG)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def breaking(image: Path) -> subprocess.CompletedProcess[str]:
    return buf("breaking", image, "--against", api_baseline.BASELINE)


def edited_descriptor(tmp_path: Path, edit_wukong_spec: str) -> Path:
    """The current descriptor set with one change to `novasphere.v1.WukongSpec`, as a careless commit might make."""
    files = descriptor_pb2.FileDescriptorSet.FromString(api_baseline.DESCRIPTOR.read_bytes())
    spec = next(m for f in files.file if f.package == "novasphere.v1" for m in f.message_type if m.name == "WukongSpec")
    cpu = next(f for f in spec.field if f.name == "cpu")
    if edit_wukong_spec == "rename cpu":
        cpu.name, cpu.json_name = "vcpus", "vcpus"
    elif edit_wukong_spec == "cpu to string":
        cpu.type = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    elif edit_wukong_spec == "delete cpu":
        spec.field.remove(cpu)
    elif edit_wukong_spec == "camelCase field":
        spec.field.add(name="bootOrder", number=999, json_name="bootOrder", type=cpu.type, label=cpu.label)
    path = tmp_path / "edited.binpb"
    path.write_bytes(files.SerializeToString())
    return path


def test_the_protos_pass_buf_lint() -> None:
    result = buf("lint", api_baseline.DESCRIPTOR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_api_is_compatible_with_the_released_baseline() -> None:
    result = breaking(api_baseline.DESCRIPTOR)
    assert result.returncode == 0, (
        "a change would break installed apps (new fields only in /api/v1; breaks go to /api/v2):\n"
        + result.stdout
        + result.stderr
    )


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        ("rename cpu", 'Field "1" on message "WukongSpec" changed name from "cpu" to "vcpus".'),
        ("cpu to string", 'Field "1" with name "cpu" on message "WukongSpec" changed type from "int32" to "string".'),
        ("delete cpu", 'Previously present field "1" with name "cpu" on message "WukongSpec" was deleted'),
    ],
)
def test_a_breaking_change_fails_the_check(tmp_path: Path, edit: str, complaint: str) -> None:
    result = breaking(edited_descriptor(tmp_path, edit))
    assert result.returncode != 0
    assert complaint in result.stdout, result.stdout


def test_lint_catches_a_field_not_in_snake_case(tmp_path: Path) -> None:
    result = buf("lint", edited_descriptor(tmp_path, "camelCase field"))
    assert result.returncode != 0
    assert 'Field name "bootOrder" should be lower_snake_case' in result.stdout, result.stdout


def test_the_baseline_is_what_the_release_step_writes_from_a_descriptor() -> None:
    baseline = descriptor_pb2.FileDescriptorSet.FromString(api_baseline.BASELINE.read_bytes())
    assert {f.name for f in baseline.file} >= {"novasphere/v1/wukong.proto", "novasphere/v1/wukong_service.proto"}
    assert not any(f.HasField("source_code_info") for f in baseline.file)
