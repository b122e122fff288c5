"""The layering DESIGN.md asks for, checked on the source: only server/kube/ touches the kubernetes client, and the
domain never imports grpc."""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "server"
TRANSPORT_ONLY = ("grpc", "grpc_health", "grpc_reflection", "google.rpc")


def _imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def _sources(*, excluding: tuple[str, ...]) -> list[Path]:
    return [p for p in SERVER.rglob("*.py") if not any(p.relative_to(SERVER).parts[0] == e for e in excluding)]


def test_only_server_kube_imports_the_kubernetes_client() -> None:
    offenders = {
        str(path.relative_to(SERVER))
        for path in _sources(excluding=("kube",))
        if any(m == "kubernetes" or m.startswith("kubernetes.") for m in _imports(path))
    }
    assert not offenders


def test_domain_modules_do_not_import_grpc() -> None:
    # transport/ and the composition root (main.py) are the only places gRPC belongs.
    domain = _sources(excluding=("transport", "main.py", "metrics.py"))
    offenders = {
        str(path.relative_to(SERVER))
        for path in domain
        if any(m == t or m.startswith(t + ".") for m in _imports(path) for t in TRANSPORT_ONLY)
    }
    assert domain
    assert not offenders
