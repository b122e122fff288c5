"""schemathesis fuzzes the REST API through Envoy from the published OpenAPI document, with real credentials, in a
tenant of its own whose per-user rate limits are raised for the run (tests/fuzz_tenant.py), behind an Envoy of its own
whose per-address limit is raised too (otherwise most cases would only meet 429s). Every operation (two events of each
stream) but the three that would end the fuzzer's own login; examples, coverage, fuzzing and stateful phases (chains
along the document's links: create → get → update → operate → delete), with a fixed seed and a bounded time.

Checks: no 5xx, every status documented, every body and content type as documented. A failure it finds is fixed and
becomes a regression test (the end of this file, tests/unit/test_wukong_queries.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import kubernetes.client
import pytest

from devcluster import stack as devstack
from novasphere.v1.admin_service_pb2_grpc import AdminServiceStub
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests.conftest import fronted_api
from tests.e2e.test_auth import SECURE_ENV, Replica, login
from tests.fuzz_tenant import FUZZ_ENV, FuzzTenant, fuzz_tenant

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "gen" / "openapi" / "novasphere.openapi.json"
REPORTS = ROOT / "test-artifacts" / "schemathesis"
"""schemathesis's own output, JUnit and NDJSON reports of the last run (each case it sent, with its response)."""
SEED = 20261203
EXAMPLES_PER_OPERATION = 12
STREAM_EXAMPLES = 3
TESTED_OPERATIONS = 73  # every operation the document has but NOT_FUZZED
NOT_FUZZED = {
    # They end the fuzzer's own login (a random body is enough for Logout), after which every case is a 401.
    "AuthService_Logout": "ends the fuzzer's session",
    "AuthService_ChangePassword": "ends the fuzzer's other sessions and counts wrong passwords towards its lockout",
    "AuthService_RevokeSession": "a stateful chain from ListSessions revokes the fuzzer's own session",
}
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


@dataclass(frozen=True)
class FuzzTarget:
    edge: devstack.Edge
    tenant: FuzzTenant
    token: str


@pytest.fixture(scope="module")
def target(
    stack: devstack.Stack, kube: kubernetes.client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    state = tmp_path_factory.mktemp("fuzz")
    with (
        fronted_api(stack, state, {**SECURE_ENV, **FUZZ_ENV}, requests_per_second_per_ip=2000) as (api, envoy),
        fuzz_tenant(kube) as tenant,
    ):
        with grpc.insecure_channel(api.target) as channel:
            replica = Replica(AuthServiceStub(channel), WukongServiceStub(channel), AdminServiceStub(channel))
            token = login(replica, tenant.username, tenant.password).access_token
        yield FuzzTarget(envoy.edge, tenant, token)


def _config(tenant: FuzzTenant, path: Path, *, chains: bool = False) -> Path:
    """The run's schemathesis.toml:
    - every call in the fuzz tenant's namespace (a random namespace only ever meets NOT_FOUND);
    - no read cursor (a random one ahead of the cluster is answered 503 CURSOR_NOT_REACHED after the wait, by design:
      tests/unit/test_wukong_queries.py);
    - CreateWukong with a spec the cluster can run (names stay random): a random spec is refused, and stateful
      chains start from a created Wukong;
    - the first event of each Server-Sent Events stream, and a few cases per stream (each waits for that event);
    - for the stateful chains, no `validateOnly`: a validated-only call creates nothing, so its response has no task id
      to follow, and schemathesis (Python's urljoin) collapses the empty segment of `/api/v1/tasks//cancel` into
      `/api/v1/tasks/cancel` — GetTask's path, where POST is rightly a 405. The cases run covers `validateOnly`."""
    no_validate_only = 'validateOnly = false\n"body.validateOnly" = false\n' if chains else ""
    path.write_text(
        f"""max-stream-events = 1

[parameters]
namespace = "{tenant.namespace}"
"body.namespace" = "{tenant.namespace}"
cursor = ""
{no_validate_only}
[[operations]]
include-operation-id = "WukongService_CreateWukong"
parameters = {{ "body.spec" = {{ cpu = 1, memory = "1Gi", disks = [
    {{ name = "root", size = "1Gi", storageClassName = "local-path" }},
] }} }}

[[operations]]
include-path-regex = "^/api/v1/watch/"
generation = {{ max-examples = {STREAM_EXAMPLES} }}
"""
    )
    return path


def _schemathesis(target: FuzzTarget, name: str, *options: str, document: Path = DOCUMENT, chains: bool = False) -> str:
    """One schemathesis run with the common settings; its output and reports land in REPORTS/<name>*."""
    assert target.edge.ca_cert is not None
    command = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(_config(target.tenant, REPORTS / "schemathesis.toml", chains=chains)),
        "run", str(document),
        "--url", target.edge.url,
        "--tls-verify", str(target.edge.ca_cert),
        "--header", f"Authorization: Bearer {target.token}",
        "--seed", str(SEED),
        "--checks", ",".join(CHECKS),
        "--workers", "1",
        "--request-timeout", "20",
        "--no-color",
        "--report", "junit,ndjson",
        "--report-junit-path", f"{name}.junit.xml",
        "--report-ndjson-path", f"{name}.ndjson",
        "--report-dir", str(REPORTS),
        *(f"--exclude-operation-id={operation}" for operation in sorted(NOT_FUZZED)),
        *options,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPORTS, capture_output=True, text=True, timeout=300, check=False)
    (REPORTS / f"{name}.txt").write_text(result.stdout + result.stderr)
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-4000:]
    return result.stdout


def _transitions(ndjson: Path) -> Counter[str]:
    """The stateful transitions the run took (`<source> -> [status] <link> -> <target>`), by how often."""
    taken: Counter[str] = Counter()
    for line in ndjson.read_text().splitlines():
        for match in re.finditer(r'"transition":\{"id":"([^"]+)"', line):
            taken[match.group(1)] += 1
    return taken


def _without_create_request_ids(path: Path) -> Path:
    """The document without the creates' `requestId` query parameter, for the stateful run only: schemathesis reads
    a parameter named `<x>Id` as a reference to an `<x>` resource, finds no call that makes a "Request", and so never
    starts a chain from a create (the cases run covers `requestId`)."""
    document = json.loads(DOCUMENT.read_text())
    for item in document["paths"].values():
        post = item.get("post")
        if post is not None:
            post["parameters"] = [p for p in post.get("parameters", []) if p.get("name") != "requestId"]
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def reports() -> Path:
    REPORTS.mkdir(parents=True, exist_ok=True)
    return REPORTS


@pytest.mark.timeout(300)
def test_schemathesis_finds_nothing_in_any_operation(target: FuzzTarget, reports: Path) -> None:
    """Examples, then the coverage phase (boundaries, every enum value, missing and wrong types), then generated
    cases, a bounded number per operation."""
    output = _schemathesis(
        target,
        "cases",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(EXAMPLES_PER_OPERATION),
        "--max-time", "150",
    )  # fmt: skip
    assert f"Operations:       {TESTED_OPERATIONS} selected" in output


@pytest.mark.timeout(300)
def test_schemathesis_chains_operations_along_the_documents_links(target: FuzzTarget, reports: Path) -> None:
    """Stateful sequences: a created Wukong is updated, operated on and deleted through the links. Only the
    services whose calls chain (the rest have had their cases above; the admin calls only ever answer the fuzzer's
    operator 403, which would take most of the time)."""
    _schemathesis(
        target,
        "stateful",
        "--phases", "stateful",
        "--include-tag-regex", "^(WukongService|TaskService|AccessService)$",
        "--max-time", "75",
        document=_without_create_request_ids(reports / "openapi-stateful.json"),
        chains=True,
    )  # fmt: skip
    taken = _transitions(reports / "stateful.ndjson")
    print("\n".join(f"{count:4} {transition}" for transition, count in taken.most_common()))
    from_create = {t.rsplit(" -> ", 1)[1] for t in taken if t.startswith("POST /api/v1/wukongs -> [200]")}
    operations = {f"POST /api/v1/wukongs/{{name}}/{verb}" for verb in ("start", "stop", "restart", "pause", "resume")}
    # Which links a time-bounded run takes varies (an operation's link on to its task is taken in some runs, not
    # all); that it went from a create to an update, an operation and a delete does not.
    assert {"PATCH /api/v1/wukongs/{name}", "DELETE /api/v1/wukongs/{name}"} <= from_create, taken
    assert from_create & operations, taken


# -- what the fuzzer found, kept as regression tests


def test_a_map_given_an_object_is_a_400_naming_the_message_not_a_500(stack: devstack.Stack, namespace: str) -> None:
    """Envoy's transcoder turns `{"nodeSelector": {"key": {}}}` (a `map<string, string>` given an object) into bytes
    that do not parse as the request message; grpcio answered UNKNOWN with the parser's text (HTTP 500)."""
    body = {"namespace": namespace, "spec": {"highAvailability": {"nodeSelector": {"zone": {}}}}}
    with stack.edge.http_client() as http:
        answer = http.patch("/api/v1/wukongs/w?updateMask=spec.highAvailability", json=body)
    assert answer.status_code == 400, answer.text
    status = answer.json()
    assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "is not a valid novasphere.v1.UpdateWukongRequest" in status["message"]
    assert "DecodeError" not in status["message"]


def test_bytes_that_are_no_request_message_are_invalid_argument_over_grpc(stack: devstack.Stack) -> None:
    with grpc.insecure_channel(stack.grpc_direct) as channel:
        get: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/novasphere.v1.WukongService/GetWukong")
        with pytest.raises(grpc.RpcError) as refused:
            get(b"\xff\xff\xff", timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a valid novasphere.v1.GetWukongRequest" in (refused.value.details() or "")


def test_a_field_path_with_quotes_and_backslashes_is_valid_json(stack: devstack.Stack, namespace: str) -> None:
    """A label key holding `"` and `\\` is quoted in the field path of the refusal; rest.lua's renaming of paths to
    JSON names cut the path at the escaped quote and wrote invalid JSON (found by the stateful run)."""
    key = 'a"b\\c\x01d'
    body = {"name": "w", "labels": {key: "v"}, "spec": {"cpu": 1, "memory": "1Gi"}}
    with stack.edge.http_client() as http:
        answer = http.post(f"/api/v1/wukongs?namespace={namespace}", json=body)
    assert answer.status_code == 400, answer.text
    status = answer.json()  # valid JSON, or this raises
    violations = [d for d in status["details"] if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    fields = [v["field"] for v in violations[0]["fieldViolations"]]
    assert f"labels[{key}]" in fields, fields
    assert f"labels[{key}]: label key" in status["message"]
