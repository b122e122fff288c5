"""kubectl, as an operator would drive the cluster: get, apply, raw calls to aggregated APIs, and waiting on a field."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from tests import kube_helpers

TIMEOUT = 90.0


class Kubectl:
    def __init__(self, kubeconfig: str, namespace: str) -> None:
        self.env = {**os.environ, "KUBECONFIG": kubeconfig}
        self.namespace = namespace

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["kubectl", "-n", self.namespace, *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        result = subprocess.run(
            ["kubectl", "-n", self.namespace, "get", kind, name, "-o", "json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            assert "NotFound" in result.stderr, result.stderr
            return None
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    def items(self, kind: str, *selector: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self("get", kind, *selector, "-o", "json"))["items"]
        return found

    def apply_wukong(self, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> None:
        body = {
            "apiVersion": "vm.novasphere.dev/v1alpha1",
            "kind": "Wukong",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        self("apply", "-f", "-", stdin=json.dumps(body))

    def wait_for(
        self, kind: str, name: str, path: tuple[str, ...], value: Any, timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            obj = self.get(kind, name)
            return obj if obj is not None and kube_helpers.dig(obj, *path) == value else None

        return kube_helpers.eventually(probe, timeout=timeout, what=f"{kind}/{name} {'.'.join(path)} = {value!r}")

    def wait_gone(self, kind: str, name: str, timeout: float = TIMEOUT) -> None:
        kube_helpers.eventually(lambda: self.get(kind, name) is None, timeout=timeout, what=f"{kind}/{name} to go")

    def raw(self, verb: str, path: str, body: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        """`kubectl get --raw` (GET) or `kubectl replace --raw -f -` (PUT); the result is returned, not checked."""
        command = ["kubectl", verb, "--raw", path] + (["-f", "-"] if verb != "get" else [])
        return subprocess.run(
            command,
            input=json.dumps(body or {}) if verb != "get" else None,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
