"""The API keys and administration pages of the web console in Debian's chromium, against the real stack: an API key
created in the page works with curl through the Envoy edge and is refused once revoked in the page; an administrator
creates a tenant, a user, a role and a binding, and the new user then signs in in a browser of their own; the
server's refusals (disabling oneself, a tenant administrator granting beyond their permissions) are explained in words
in the dialog that caused them; a user without administration permissions sees no administration tab. Screenshots of
each page and dialog go to test-artifacts/web/."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import grpc
import kubernetes.client
import pytest

from devcluster import accounts
from devcluster import stack as devstack
from novasphere.v1 import auth_service_pb2 as auth_pb2
from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub
from tests import kube_helpers
from tests.conftest import TENANT
from tests.e2e.test_auth import PASSWORD
from tests.web_browser import Browser, BrowserServer, Tab
from tests.web_console import Web, can_log_in, open_signed_in, shot, sign_in

CURL_SECONDS = 10
NEW_PASSWORD = "a different horse, battery staple"
NARROW = 768
REVOKED_WITHIN = 10.0
"""Seconds until every replica refuses a revoked key (its informer sees the Secret go)."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def made_users(kube: kubernetes.client.ApiClient) -> Iterator[list[str]]:
    """Users a test creates (with the API or through the page); their bindings and Secrets are removed afterwards."""
    made: list[str] = []
    yield made
    core = kubernetes.client.CoreV1Api(kube)
    for name in made:
        accounts.unbind(kube, name)
        try:
            core.delete_namespaced_secret(f"user-{name}", accounts.API_NAMESPACE)
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise


def user_with_role(kube: kubernetes.client.ApiClient, made: list[str], role: str) -> str:
    name = unique(role)
    accounts.create_user(kube, name, PASSWORD, tenant=TENANT, role=role)
    made.append(name)
    return name


def dialog(name: str) -> str:
    """The open dialog of that name (`rootClassName` dialog-<name> in the page)."""
    return f".dialog-{name} .ant-modal"


def footer_button(name: str, label: str) -> str:
    return f"{dialog(name)} .ant-modal-footer button:has-text('{label}')"


def row(table: str, key: str) -> str:
    return f"[data-testid={table}] tr[data-row-key='{key}']"


def curl_wukongs(web: Web, ca_cert: str, key: str, namespace: str) -> tuple[int, str]:
    """GET /api/v1/wukongs with the key, by the real curl through the edge: (HTTP status, body)."""
    done = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--max-time",
            str(CURL_SECONDS),
            "--cacert",
            ca_cert,
            "--header",
            f"X-API-Key: {key}",
            "--write-out",
            "\n%{http_code}",
            f"{web.url}/api/v1/wukongs?namespace={namespace}",
        ],
        capture_output=True,
        text=True,
        timeout=CURL_SECONDS + 5,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def login_refusal(web: Web, username: str, password: str) -> grpc.StatusCode | None:
    """How the API server refuses `username` logging in with `password` now; None when it lets them."""
    with grpc.insecure_channel(web.api_target) as channel:
        try:
            AuthServiceStub(channel).Login(auth_pb2.LoginRequest(username=username, password=password))
        except grpc.RpcError as refused:
            return refused.code()
    return None


def give_role(tab: Tab, username: str, role: str) -> None:
    """On the role bindings tab, gives `username` the `role` in the signed-in tenant."""
    tab.click("[role=tab]:has-text('Role bindings')")
    tab.click("button:has-text('Give a role')")
    tab.fill("#newBinding_username", username)
    pick_option(tab, "#newBinding_role", role)
    shot(tab, "admin-binding-create-dialog")
    tab.click(f"{dialog('create-binding')} button[type=submit]")
    tab.wait(row("bindings", f"{username}/{role}"))


def at_narrow_width(tab: Tab, name: str) -> None:
    """The page at 768 px wide: nothing wider than the window (tables scroll inside themselves); a screenshot."""
    tab.viewport(NARROW, 900)
    try:
        assert tab.evaluate("document.documentElement.scrollWidth") <= NARROW
        shot(tab, f"{name}-{NARROW}")
    finally:
        tab.viewport(1440, 900)


def pick_option(tab: Tab, field: str, option: str) -> None:
    """Chooses `option` of the Select whose input is `field`."""
    tab.click(field)
    tab.click(f".ant-select-dropdown:visible .ant-select-item-option[title='{option}']")


def test_an_api_key_created_in_the_page_works_with_curl_until_revoked_there(
    web: Web,
    browser: Browser,
    operator: str,
    namespace: str,
    stack: devstack.Stack,
    kube: kubernetes.client.ApiClient,
) -> None:
    kube_helpers.create_wukong(kube, namespace, "keyed", kube_helpers.MINIMAL_SPEC)
    tab = open_signed_in(browser, web, operator, path="/api-keys")
    tab.wait("text=No API keys yet")
    shot(tab, "apikeys-empty")

    tab.click("button:has-text('New API key')")
    tab.wait(dialog("create-key"))
    tab.fill("#newKey_name", "ci-script")
    tab.wait(f"{dialog('create-key')} input[data-permission='vm:query']:checked")  # all of the caller's, by default
    shot(tab, "apikeys-create-dialog")
    tab.click(f"{dialog('create-key')} button[type=submit]")
    tab.wait(dialog("key-shown-once"))
    assert "it will not be shown again" in tab.text(dialog("key-shown-once"))
    key = str(tab.evaluate("document.querySelector('[data-testid=new-key]').value"))
    assert key.startswith("nsk_")
    shot(tab, "apikeys-shown-once-dialog")
    tab.permit("clipboard-read", "clipboard-write")
    tab.click(f"{dialog('key-shown-once')} button:has-text('Copy')")
    tab.wait("text=Copied to the clipboard")
    assert tab.evaluate("navigator.clipboard.readText()") == key
    tab.click(footer_button("key-shown-once", "I have copied it"))
    tab.wait(dialog("key-shown-once"), state="detached")
    assert tab.texts("[data-testid=apikeys] tbody tr.ant-table-row td:first-child") == ["ci-script"]
    assert key not in tab.evaluate("document.body.innerHTML")  # shown once: gone with its dialog
    shot(tab, "apikeys-list")
    at_narrow_width(tab, "apikeys-list")

    def listed_with_key() -> list[str] | None:  # the replica lists the VM once its informer has seen it
        status, body = curl_wukongs(web, str(stack.tls.ca_cert), key, namespace)
        assert status == 200, body
        names = [w["name"] for w in json.loads(body).get("wukongs", [])]
        return names or None

    assert kube_helpers.eventually(listed_with_key, timeout=10, what="the key's listing") == ["keyed"]

    tab.click("[data-testid=apikeys] button:has-text('Revoke')")
    tab.wait(dialog("revoke-key"))
    shot(tab, "apikeys-revoke-dialog")
    tab.click(footer_button("revoke-key", "Revoke"))
    tab.wait("text=No API keys yet")

    def refused() -> int | None:
        status, _ = curl_wukongs(web, str(stack.tls.ca_cert), key, namespace)
        return status if status == 401 else None

    assert kube_helpers.eventually(refused, timeout=REVOKED_WITHIN, what="the revoked key to be refused") == 401


def test_an_administrator_creates_a_tenant_a_role_a_user_and_a_binding_and_the_user_signs_in(
    web: Web,
    browser: Browser,
    browser_server: BrowserServer,
    kube: kubernetes.client.ApiClient,
    made_users: list[str],
) -> None:
    admin = user_with_role(kube, made_users, "admin")
    tenant, tenant_namespace, role, newcomer = unique("acme"), unique("acme-ns"), unique("vm-viewer"), unique("ada")
    made_users.append(newcomer)
    try:
        tab = open_signed_in(browser, web, admin, path="/admin")
        tab.wait(row("tenants", TENANT))
        assert tab.url().endswith("/admin/tenants")
        assert tab.texts("[role=tab]") == ["Tenants", "Users", "Roles", "Role bindings"]
        shot(tab, "admin-tenants")

        # a tenant with a new namespace, then deleted by typing its name (the namespace stays)
        tab.click("button:has-text('New tenant')")
        tab.fill("#newTenant_tenantId", tenant)
        tab.fill("#newTenant_namespaces", tenant_namespace)
        tab.press("#newTenant_namespaces", "Enter")
        shot(tab, "admin-tenant-create-dialog")
        tab.click(f"{dialog('create-tenant')} button[type=submit]")
        tab.wait(row("tenants", tenant))
        assert f"{tenant_namespace} (default)" in tab.text(row("tenants", tenant))
        tab.click(f"{row('tenants', tenant)} button:has-text('Delete')")
        tab.fill(f"{dialog('delete-tenant')} [data-testid=type-to-confirm]", tenant)
        shot(tab, "admin-tenant-delete-dialog")
        tab.click(footer_button("delete-tenant", "Delete"))
        tab.wait(row("tenants", tenant), state="detached")
        assert kube_helpers.namespace_exists(kube, tenant_namespace)

        # a user, who cannot sign in before holding a role
        tab.click("[role=tab]:has-text('Users')")
        tab.wait(row("users", admin))
        tab.click("button:has-text('New user')")
        tab.fill("#newUser_username", newcomer)
        tab.fill("#newUser_password", PASSWORD)
        tab.fill("#newUser_repeat", PASSWORD)
        shot(tab, "admin-user-create-dialog")
        tab.click(f"{dialog('create-user')} button[type=submit]")
        tab.wait(row("users", newcomer))
        assert "No role: cannot sign in" in tab.text(row("users", newcomer))

        # disabling oneself is refused, in words, in the dialog that asked
        tab.click(f"{row('users', admin)} button:has-text('Disable')")
        tab.click(footer_button("disable-user", "Disable"))
        refusal = f"{dialog('disable-user')} [data-testid=refusal]"
        tab.wait(refusal)
        assert tab.text(f"{refusal} .ant-alert-title") == f"Could not disable {admin}"
        assert "You cannot disable yourself" in tab.text(refusal)
        shot(tab, "admin-refusal-self-disable")
        tab.click(footer_button("disable-user", "Cancel"))
        shot(tab, "admin-users")
        at_narrow_width(tab, "admin-users")

        # the binding in the administrator's tenant, after which the user signs in elsewhere
        give_role(tab, newcomer, "operator")
        shot(tab, "admin-bindings")

        elsewhere = Browser(browser_server)
        try:
            second = elsewhere.open()
            kube_helpers.eventually(lambda: can_log_in(web, newcomer), timeout=20, what="the new user to log in")
            sign_in(second, web, newcomer)
            second.wait(f"[data-testid=who] >> text={newcomer} · {TENANT}")
            shot(second, "admin-newcomer-signed-in")
            assert elsewhere.problems() == []
        finally:
            elsewhere.close()

        # a role from the server's known permissions, grouped by resource: refused deletion while someone holds it
        tab.click("[role=tab]:has-text('Roles')")
        tab.wait(row("roles", "operator"))
        shot(tab, "admin-roles")
        tab.click("button:has-text('New role')")
        tab.fill("#role_name", role)
        tab.click(f"{dialog('role-editor')} input[data-permission='vm:query']")
        tab.click(f"{dialog('role-editor')} input[data-permission='task:query']")
        shot(tab, "admin-role-editor-dialog")
        tab.click(f"{dialog('role-editor')} button[type=submit]")
        tab.wait(row("roles", role))
        permissions_shown = " ".join(tab.text(f"{row('roles', role)} td:nth-child(2)").split())
        assert permissions_shown == "Virtual machines: View VMs Tasks: View tasks"
        give_role(tab, newcomer, role)
        tab.click("[role=tab]:has-text('Roles')")
        tab.click(f"{row('roles', role)} button:has-text('Delete')")
        tab.click(footer_button("delete-role", "Delete"))
        refusal = f"{dialog('delete-role')} [data-testid=refusal]"
        tab.wait(refusal)
        assert "The role is still given to users (the server names them below)." in tab.text(refusal)
        assert f"{newcomer} in {TENANT}" in tab.text(refusal)  # the server names the holders
        shot(tab, "admin-refusal-role-in-use")
        tab.click(footer_button("delete-role", "Cancel"))
        tab.click("[role=tab]:has-text('Role bindings')")
        tab.click(f"{row('bindings', f'{newcomer}/{role}')} button:has-text('Delete')")
        shot(tab, "admin-binding-delete-dialog")
        tab.click(footer_button("delete-binding", "Take role"))
        tab.wait(row("bindings", f"{newcomer}/{role}"), state="detached")
        tab.click("[role=tab]:has-text('Roles')")
        tab.click(f"{row('roles', role)} button:has-text('Delete')")
        tab.click(footer_button("delete-role", "Delete"))
        tab.wait(row("roles", role), state="detached")

        # a new password, then disabled and enabled again
        tab.click("[role=tab]:has-text('Users')")
        tab.click(f"{row('users', newcomer)} button:has-text('Reset password')")
        tab.fill("#resetPassword_password", NEW_PASSWORD)
        tab.fill("#resetPassword_repeat", NEW_PASSWORD)
        shot(tab, "admin-reset-password-dialog")
        tab.click(f"{dialog('reset-password')} button[type=submit]")
        tab.wait(dialog("reset-password"), state="detached")
        kube_helpers.eventually(  # once the replica's informer has the new hash
            lambda: login_refusal(web, newcomer, NEW_PASSWORD) is None, timeout=10, what="the new password to work"
        )
        tab.click(f"{row('users', newcomer)} button:has-text('Disable')")
        shot(tab, "admin-disable-user-dialog")
        tab.click(footer_button("disable-user", "Disable"))
        tab.wait(f"{row('users', newcomer)} >> text=Disabled")
        kube_helpers.eventually(
            lambda: login_refusal(web, newcomer, NEW_PASSWORD) == grpc.StatusCode.UNAUTHENTICATED,
            timeout=10,
            what="the disabled user to be refused",
        )
        tab.click(f"{row('users', newcomer)} button:has-text('Enable')")
        tab.wait(f"{row('users', newcomer)} >> text=Active")

        # the same page in Chinese, then the user deleted
        tab.evaluate("localStorage.setItem('novasphere.language', 'zh-CN')")
        tab.goto(web.url + "/admin/users")
        tab.wait(row("users", newcomer))
        assert tab.texts("[role=tab]") == ["租户", "用户", "角色", "角色绑定"]
        shot(tab, "admin-users-zh")
        tab.click(f"{row('users', newcomer)} button.ant-btn-dangerous")  # 删除 (Ant Design spaces two characters)
        tab.wait(f"{dialog('delete-user')} >> text=删除用户 {newcomer}？")
        tab.click(f"{dialog('delete-user')} .ant-modal-footer button.ant-btn-dangerous")
        tab.wait(row("users", newcomer), state="detached")
    finally:
        kube_helpers.delete_namespace(kube, tenant_namespace)


def test_a_tenant_administrator_granting_beyond_their_permissions_is_refused_in_words(
    web: Web, browser: Browser, kube: kubernetes.client.ApiClient, made_users: list[str], operator: str
) -> None:
    boss = user_with_role(kube, made_users, "tenant-admin")
    tab = open_signed_in(browser, web, boss, path="/admin")
    tab.wait(row("roles", "admin"))
    assert tab.texts("[role=tab]") == ["Roles", "Role bindings"]  # no tenants, no users
    assert tab.count("button:has-text('New role')") == 0  # listing roles is not defining them

    tab.click("[role=tab]:has-text('Role bindings')")
    tab.wait(row("bindings", f"{boss}/tenant-admin"))
    tab.click("button:has-text('Give a role')")
    tab.fill("#newBinding_username", operator)
    pick_option(tab, "#newBinding_role", "admin")
    assert tab.text(f"{dialog('create-binding')} [data-testid=beyond-warning]") == (
        "You do not hold all of this role's permissions (admin): the server will refuse to give it."
    )
    tab.click(f"{dialog('create-binding')} button[type=submit]")
    refusal = f"{dialog('create-binding')} [data-testid=refusal]"
    tab.wait(refusal)
    assert tab.evaluate(f'document.querySelector("{refusal}").dataset.reason') == "PERMISSION_DENIED"
    assert tab.text(f"{refusal} .ant-alert-title") == "Could not give the role"
    assert "Role admin holds permissions you do not hold (admin)." in tab.text(refusal)
    shot(tab, "admin-refusal-escalation")
    assert accounts.bindings(kube).count({"user": operator, "tenant": TENANT, "role": "admin"}) == 0


def test_a_user_without_administration_permissions_sees_no_administration_tab(
    web: Web, browser: Browser, operator: str
) -> None:
    tab = open_signed_in(browser, web, operator, path="/admin/users")
    tab.wait("[data-testid=no-admin]")
    assert tab.count("[role=tab]") == 0
    assert "You have no administration permissions" in tab.text("[data-testid=no-admin]")
    shot(tab, "admin-none")
