"""The OpenAPI document `make gen` writes (gen/openapi/): every REST path is there, and the fields vmoperator ignores
say so, as the proto comments do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DOCUMENT = Path(__file__).resolve().parents[2] / "gen" / "openapi" / "novasphere.swagger.json"


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return document


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/wukongs", "get"),
        ("/api/v1/wukongs", "post"),
        ("/api/v1/wukongs/{name}", "get"),
        ("/api/v1/wukongs/{wukong.name}", "patch"),
        ("/api/v1/vms/{vmId}", "get"),
        ("/api/v1/watch/wukongs", "get"),
        ("/api/v1/watch/wukongs/{name}", "get"),
    ],
)
def test_every_rest_path_is_described(openapi: dict[str, Any], path: str, method: str) -> None:
    assert method in openapi["paths"][path]


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ("v1WukongSpec", "osImage"),
        ("v1Disk", "boot"),
        ("v1HighAvailability", "restartPolicy"),
        ("v1HighAvailability", "antiAffinity"),
        ("v1StartStrategy", "runStrategy"),
    ],
)
def test_fields_vmoperator_ignores_say_so(openapi: dict[str, Any], definition: str, field: str) -> None:
    assert "Ignored by vmoperator" in openapi["definitions"][definition]["properties"][field]["description"]
