"""A Python team's first steps with the REST API, through a client generated from the published OpenAPI document
(openapi-python-client, package `novasphere_rest_client`): log in, list VMs, start one, read a refusal's reason.
tests/e2e/test_rest_client.py generates the client, type-checks this file against it (mypy --strict) and runs it
against the stack; it prints what it saw as JSON for the test to check. The TypeScript twin is
tests/browser/rest_client_smoke.ts."""

from __future__ import annotations

import json
import os
import ssl

from novasphere_rest_client import AuthenticatedClient, Client
from novasphere_rest_client.api.auth_service import auth_service_login
from novasphere_rest_client.api.wukong_service import (
    wukong_service_get_wukong,
    wukong_service_list_wukongs,
    wukong_service_start_wukong,
)
from novasphere_rest_client.models import (
    GoogleRpcErrorInfoPacked,
    GoogleRpcStatus,
    ListWukongsResponse,
    LoginRequest,
    LoginResponse,
    StartWukongBody,
    Task,
)
from novasphere_rest_client.types import Unset


def _setting(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"{name} is not set")
    return value


def main() -> None:
    url = _setting("NOVASPHERE_URL")
    tls = ssl.create_default_context(cafile=_setting("NOVASPHERE_CA_CERT"))
    credentials = LoginRequest(username=_setting("NOVASPHERE_USER"), password=_setting("NOVASPHERE_PASSWORD"))
    login = auth_service_login.sync(client=Client(base_url=url, verify_ssl=tls), body=credentials)
    if not isinstance(login, LoginResponse):
        raise SystemExit(f"login failed: {login}")
    api = AuthenticatedClient(base_url=url, token=login.access_token, verify_ssl=tls)

    namespace = _setting("NOVASPHERE_NAMESPACE")
    listed = wukong_service_list_wukongs.sync(client=api, namespace=namespace, page_size=10)
    if not isinstance(listed, ListWukongsResponse):
        raise SystemExit(f"list failed: {listed}")
    names = [wukong.name for wukong in listed.wukongs if not isinstance(wukong.name, Unset)]
    memory = [wukong.status.memory_mb for wukong in listed.wukongs if not isinstance(wukong.status, Unset)]

    started = wukong_service_start_wukong.sync(
        _setting("NOVASPHERE_WUKONG"), client=api, body=StartWukongBody(namespace=namespace)
    )
    if not isinstance(started, Task):
        raise SystemExit(f"start failed: {started}")

    refused = wukong_service_get_wukong.sync_detailed("no-such-vm", client=api, namespace=namespace)
    reasons = []
    if isinstance(refused.parsed, GoogleRpcStatus) and not isinstance(refused.parsed.details, Unset):
        # the details are a union told apart by "@type": the ErrorInfo's reason is what a client branches on
        reasons = [detail.reason for detail in refused.parsed.details if isinstance(detail, GoogleRpcErrorInfoPacked)]

    print(
        json.dumps(
            {
                "tokenType": login.token_type,
                "names": names,
                "memory": memory,
                "task": {"operation": started.operation.value, "state": started.state.value, "wukong": started.name},
                "notFound": {"status": int(refused.status_code), "reasons": reasons},
            }
        )
    )


if __name__ == "__main__":
    main()
