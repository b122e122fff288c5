"""Captures the OpenAPI document's examples from a running stack: a short scenario of REST calls through Envoy (create
a Wukong, read, list and start it, follow its task, delete it, and a few refusals), whose requests and answers are
stored as they were in tools/openapi_examples.json; `make gen` puts them into the document (tools/openapi3.py).

Run it by hand against `make run` when the API's JSON changes, then `make gen`:
    . .run/env && .venv/bin/python -m tools.openapi_examples
It calls as the development identity (no credentials) in the namespace given, where it creates and deletes one Wukong.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from tools.openapi3 import EXAMPLES

NAME = "example-vm"
SPEC = {
    "cpu": 2,
    "memory": "4Gi",
    "disks": [{"name": "root", "size": "20Gi", "storageClassName": "local-path"}],
    "startStrategy": {"autoStart": False},  # started by the scenario
}

ENDED = ("SUCCEEDED", "FAILED", "CANCELLED")
TASK_SECONDS = 120
Examples = dict[str, dict[str, Any]]
"""operationId → {"request": body, "responses": {status: body}}."""


def capture(client: httpx.Client, namespace: str) -> Examples:
    """Runs the scenario and returns what each call sent and got."""
    examples: Examples = {}

    def call(
        operation_id: str, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        response = client.request(method, path, params=params, json=body)
        if response.headers.get("content-type", "").split(";")[0] != "application/json":
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:200]}")
        entry = examples.setdefault(operation_id, {"responses": {}})
        if body is not None and response.status_code == 200:
            entry["request"] = body
        entry["responses"][str(response.status_code)] = response.json()
        return response.json()

    in_namespace = {"namespace": namespace}
    call("CatalogService_ListStorageClasses", "GET", "/api/v1/storage-classes", params=in_namespace)
    call("AuthService_Me", "GET", "/api/v1/auth/me")
    created = call(
        "WukongService_CreateWukong",
        "POST",
        "/api/v1/wukongs",
        params=in_namespace,
        body={"name": NAME, "labels": {"app": "web"}, "spec": SPEC},
    )
    if "name" not in created:
        raise RuntimeError(f"CreateWukong refused: {created}")
    call("WukongService_GetWukong", "GET", f"/api/v1/wukongs/{NAME}", params=in_namespace)
    call("WukongService_GetWukong", "GET", "/api/v1/wukongs/no-such-vm", params=in_namespace)  # 404
    call("WukongService_GetWukongByVmId", "GET", f"/api/v1/vms/{created['uid']}")
    call("WukongService_ListWukongs", "GET", "/api/v1/wukongs", params={**in_namespace, "pageSize": 10})
    call("WukongService_ListWukongs", "GET", "/api/v1/wukongs", params={"pageSize": 501})  # 400
    task = call("WukongService_StartWukong", "POST", f"/api/v1/wukongs/{NAME}/start", body=in_namespace)
    _wait_until_ended(client, task["id"])
    call("TaskService_GetTask", "GET", f"/api/v1/tasks/{task['id']}")
    call("TaskService_ListTasks", "GET", "/api/v1/tasks", params={**in_namespace, "pageSize": 1})
    call("StatsService_GetStats", "GET", "/api/v1/stats", params=in_namespace)
    call("WukongService_DeleteWukong", "DELETE", f"/api/v1/wukongs/{NAME}", params=in_namespace)
    return examples


def _wait_until_ended(client: httpx.Client, task_id: str) -> None:
    """So the task example shows a finished one."""
    deadline = time.monotonic() + TASK_SECONDS
    while client.get(f"/api/v1/tasks/{task_id}").json()["state"] not in ENDED:
        if time.monotonic() > deadline:
            raise RuntimeError(f"task {task_id} did not end within {TASK_SECONDS} s")
        time.sleep(0.2)


def write(examples: Examples, path: Path = EXAMPLES) -> None:
    path.write_text(json.dumps(examples, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NOVASPHERE_HTTP"), help="Envoy (default: $NOVASPHERE_HTTP)")
    parser.add_argument("--ca", default=os.environ.get("NOVASPHERE_CA"), help="its CA (default: $NOVASPHERE_CA)")
    parser.add_argument("--namespace", default="demo", help="where to create the example Wukong (default: demo)")
    arguments = parser.parse_args()
    if not arguments.url:
        parser.error("no --url and no $NOVASPHERE_HTTP: start `make run` and `. .run/env`")
    with httpx.Client(base_url=arguments.url, verify=arguments.ca or True, timeout=30) as client:
        write(capture(client, arguments.namespace))
    print(f"wrote {EXAMPLES}; run `make gen` to put them into the document")


if __name__ == "__main__":
    main()
