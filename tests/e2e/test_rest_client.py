"""Clients generated from the published OpenAPI document type-check and work against the stack: log in, list, start,
and read a refusal's reason. TypeScript: openapi-typescript for the types and openapi-fetch for the calls, under
`tsc --strict` (tests/browser/rest_client_smoke.ts, beside the node tools it needs). Python: openapi-python-client
(httpx + attrs), under `mypy --strict` (tests/rest_client_smoke.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import kubernetes.client

from devcluster import accounts
from devcluster import stack as devstack
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "gen" / "openapi" / "novasphere.openapi.json"
CLIENT = ROOT / "tests" / "browser"
NODE_TOOLS = CLIENT / "node_modules" / ".bin"
PYTHON_SMOKE = ROOT / "tests" / "rest_client_smoke.py"
PYTHON_PACKAGE = "novasphere_rest_client"


def _run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path = CLIENT) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=180, env=env, check=False
    )
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_a_generated_typescript_client_compiles_and_logs_in_lists_and_starts(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    generated = CLIENT / "generated"
    _run(NODE_TOOLS / "openapi-typescript", DOCUMENT, "--output", generated / "novasphere-api.d.ts")
    _run(
        NODE_TOOLS / "tsc",
        "--strict",
        "--noUncheckedIndexedAccess",
        "--target",
        "es2022",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--skipLibCheck",
        "--outDir",
        generated,
        "--types",
        "node",
        "rest_client_smoke.ts",
    )
    stopped = {**kube_helpers.MINIMAL_SPEC, "startStrategy": {"autoStart": False}}
    kube_helpers.create_wukong(kube, namespace, "from-ts", stopped)
    user = f"ts-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, user, PASSWORD, tenant=TENANT, role="operator")
    assert stack.edge.ca_cert is not None
    try:
        output = _run(
            "node",
            generated / "rest_client_smoke.js",
            env={
                **os.environ,
                "NODE_EXTRA_CA_CERTS": str(stack.edge.ca_cert),
                "NOVASPHERE_URL": stack.edge.url,
                "NOVASPHERE_USER": user,
                "NOVASPHERE_PASSWORD": PASSWORD,
                "NOVASPHERE_NAMESPACE": namespace,
                "NOVASPHERE_WUKONG": "from-ts",
            },
        )
    finally:
        accounts.unbind(kube, user)
    seen = json.loads(output)
    assert seen["tokenType"] == "Bearer"
    assert seen["names"] == ["from-ts"]
    assert seen["memory"] == [1024]  # a JSON number, which `number[]` in smoke.ts already insisted on
    task = seen["task"]
    assert (task["operation"], task["wukong"]) == ("START", "from-ts")
    assert task["state"] in {"PENDING", "RUNNING"}  # returned at once: not ended, whether or not a worker took it
    assert seen["notFound"] == {"status": 404, "reason": "WUKONG_NOT_FOUND"}


def test_a_generated_python_client_type_checks_and_logs_in_lists_and_starts(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    tools = Path(sys.executable).parent  # openapi-python-client runs ruff on what it wrote: the venv's
    path_env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}
    _run(
        tools / "openapi-python-client", "generate", "--path", DOCUMENT, "--meta", "none",
        "--output-path", tmp_path / PYTHON_PACKAGE, env=path_env, cwd=tmp_path,
    )  # fmt: skip
    (tmp_path / "rest_client_smoke.py").write_text(PYTHON_SMOKE.read_text())
    # Strict on everything the document produced; the generator's fixed client.py template forwards `__exit__(*args:
    # object)`, which this mypy refuses whatever the document says.
    (tmp_path / "mypy.ini").write_text(
        f"[mypy]\nstrict = True\n\n[mypy-{PYTHON_PACKAGE}.client]\ndisable_error_code = arg-type\n"
    )
    _run(sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "rest_client_smoke.py", cwd=tmp_path)
    stopped = {**kube_helpers.MINIMAL_SPEC, "startStrategy": {"autoStart": False}}
    kube_helpers.create_wukong(kube, namespace, "from-python", stopped)
    user = f"py-{uuid.uuid4().hex[:8]}"
    accounts.create_user(kube, user, PASSWORD, tenant=TENANT, role="operator")
    assert stack.edge.ca_cert is not None
    try:
        output = _run(
            sys.executable,
            "rest_client_smoke.py",
            cwd=tmp_path,
            env={
                **os.environ,
                "NOVASPHERE_CA_CERT": str(stack.edge.ca_cert),
                "NOVASPHERE_URL": stack.edge.url,
                "NOVASPHERE_USER": user,
                "NOVASPHERE_PASSWORD": PASSWORD,
                "NOVASPHERE_NAMESPACE": namespace,
                "NOVASPHERE_WUKONG": "from-python",
            },
        )
    finally:
        accounts.unbind(kube, user)
    seen = json.loads(output)
    assert seen["tokenType"] == "Bearer"
    assert seen["names"] == ["from-python"]
    assert seen["memory"] == [1024]  # an int: the generated model passes the JSON value through as it came
    task = seen["task"]
    assert (task["operation"], task["wukong"]) == ("START", "from-python")
    assert task["state"] in {"PENDING", "RUNNING"}
    assert seen["notFound"] == {"status": 404, "reasons": ["WUKONG_NOT_FOUND"]}
