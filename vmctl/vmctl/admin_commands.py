"""VM metrics (`top`), API keys, SSH keys, and administration: tenants, users, roles and role bindings."""

from __future__ import annotations

import sys
from typing import Any

import click

from vmctl import errors
from vmctl.cli import State, namespaced, output_option, pass_state


def register(cli: click.Group) -> None:
    cli.add_command(top)
    cli.add_command(apikeys)
    cli.add_command(admin)
    cli.add_command(ssh_keys)


def _rate(value: Any, has: bool, unit: str = "B/s") -> str:
    if not has:
        return "-"
    for size, suffix in ((1 << 30, "Gi"), (1 << 20, "Mi"), (1 << 10, "Ki")):
        if value >= size:
            return f"{value / size:.1f}{suffix}{unit}"
    return f"{value:.0f}{unit}"


TOP_COLUMNS = (
    ("NAME", lambda m: m.name),
    ("CPU", lambda m: f"{m.cpu.cores:.2f} of {m.cpu.vcpus} ({m.cpu.percent:.0f}%)"),
    ("MEMORY", lambda m: f"{_rate(m.memory.used_bytes, True, '')} ({m.memory.percent:.0f}%)"),
    ("NET IN", lambda m: _rate(m.network.receive_bytes_per_second, m.network.HasField("receive_bytes_per_second"))),
    ("NET OUT", lambda m: _rate(m.network.transmit_bytes_per_second, m.network.HasField("transmit_bytes_per_second"))),
    ("DISK READ", lambda m: _rate(m.disk.read_bytes_per_second, m.disk.HasField("read_bytes_per_second"))),
    ("DISK WRITE", lambda m: _rate(m.disk.write_bytes_per_second, m.disk.HasField("write_bytes_per_second"))),
)


@click.command()
@click.argument("names", nargs=-1)
@namespaced
@click.option("-w", "--watch", is_flag=True, help="Follow one VM, a line per sample (Ctrl-C to stop).")
@click.option("--interval", default=5, show_default=True, help="Seconds between samples with -w.")
@output_option()
@pass_state
def top(state: State, names: tuple[str, ...], namespace: str, watch: bool, interval: int, output: str) -> None:
    """CPU, memory, network and disk of VMs (all running ones in the namespace when none is named)."""
    from novasphere.v1 import metrics_service_pb2
    from novasphere.v1.metrics_service_pb2_grpc import MetricsServiceStub
    from vmctl.output import check_format, emit, table
    from vmctl.vm_commands import list_all, stub_of

    output = check_format(output)
    session = state.session(namespace)
    stub = MetricsServiceStub(session.channel)
    if watch:
        if len(names) != 1:
            raise errors.VmctlError("top -w follows one VM: name it", errors.USAGE)
        request = metrics_service_pb2.WatchWukongMetricsRequest(
            namespace=session.namespace, name=names[0], interval_seconds=interval
        )
        for index, sample in enumerate(session.stream(stub.WatchWukongMetrics, request)):
            table(TOP_COLUMNS, [sample], header=index == 0)
            sys.stdout.flush()
        return
    chosen = list(names) or [w.name for w in list_all(session, stub_of(session), session.namespace, "running")]
    found = [
        session.call(
            stub.GetWukongMetrics, metrics_service_pb2.GetWukongMetricsRequest(namespace=session.namespace, name=name)
        )
        for name in chosen
    ]
    emit(found, output, columns=TOP_COLUMNS, kind="metrics")


@click.group()
def apikeys() -> None:
    """Your API keys (for scripts and CI): create, list, revoke."""


def _auth_stub(session: Any) -> Any:
    from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub

    return AuthServiceStub(session.channel)


KEY_COLUMNS = (
    ("ID", lambda k: k.id),
    ("NAME", lambda k: k.name),
    ("PERMISSIONS", lambda k: ",".join(k.permissions)),
    ("EXPIRES", lambda k: k.expire_time.ToJsonString() if k.expire_time.seconds else "never"),
)


@apikeys.command("create")
@click.argument("name")
@click.option("-p", "--permission", "permissions", multiple=True, required=True, help="e.g. vm:query; repeatable.")
@click.option("--expires-in-days", type=int, default=0, help="Default: never.")
@pass_state
def create_key(state: State, name: str, permissions: tuple[str, ...], expires_in_days: int) -> None:
    """Create a key; it is shown once."""
    import time

    from google.protobuf import timestamp_pb2

    from novasphere.v1 import auth_service_pb2

    session = state.session()
    request = auth_service_pb2.CreateApiKeyRequest(name=name, permissions=list(permissions))
    if expires_in_days:
        request.expire_time.CopyFrom(timestamp_pb2.Timestamp(seconds=int(time.time()) + expires_in_days * 86400))
    key = session.call(_auth_stub(session).CreateApiKey, request)
    click.echo(f"apikey/{key.id} created; its key (shown only now): {key.key}")


@apikeys.command("list")
@output_option()
@pass_state
def list_keys(state: State, output: str) -> None:
    from novasphere.v1 import auth_service_pb2
    from vmctl.output import check_format, emit

    session = state.session()
    found = session.call(_auth_stub(session).ListApiKeys, auth_service_pb2.ListApiKeysRequest())
    emit(list(found.api_keys), check_format(output), columns=KEY_COLUMNS, kind="apikey", name=lambda k: k.id)


@apikeys.command("revoke")
@click.argument("key_id")
@pass_state
def revoke_key(state: State, key_id: str) -> None:
    from novasphere.v1 import auth_service_pb2

    session = state.session()
    session.call(_auth_stub(session).RevokeApiKey, auth_service_pb2.RevokeApiKeyRequest(id=key_id))
    click.echo(f"apikey/{key_id} revoked")


@click.group()
def admin() -> None:
    """Administration: tenants, users, roles and who holds them."""


def _admin(session: Any) -> Any:
    from novasphere.v1.admin_service_pb2_grpc import AdminServiceStub

    return AdminServiceStub(session.channel)


@admin.command("tenants")
@click.argument("action", type=click.Choice(["list", "create", "delete"]), default="list")
@click.argument("tenant", required=False, default="")
@click.option("--namespace", "namespaces", multiple=True, help="create: its namespaces (the first is the default).")
@output_option()
@pass_state
def tenants(state: State, action: str, tenant: str, namespaces: tuple[str, ...], output: str) -> None:
    """`list`, `create TENANT --namespace NS…`, `delete TENANT`."""
    from novasphere.v1 import admin_service_pb2 as pb
    from vmctl.output import check_format, emit

    session = state.session()
    stub = _admin(session)
    if action == "list":
        found = session.call(stub.ListTenants, pb.ListTenantsRequest())
        columns = (
            ("TENANT", lambda t: t.tenant_id),
            ("NAMESPACES", lambda t: ",".join(t.namespaces)),
            ("DEFAULT", lambda t: t.default_namespace),
            ("MEMBERS", lambda t: str(t.members)),
        )
        emit(list(found.tenants), check_format(output), columns=columns, kind="tenant", name=lambda t: t.tenant_id)
        return
    _require(tenant, f"admin tenants {action} TENANT")
    if action == "create":
        made = session.call(stub.CreateTenant, pb.CreateTenantRequest(tenant_id=tenant, namespaces=list(namespaces)))
        click.echo(f"tenant/{made.tenant_id} created with namespaces {', '.join(made.namespaces)}")
    else:
        session.call(stub.DeleteTenant, pb.DeleteTenantRequest(tenant_id=tenant))
        click.echo(f"tenant/{tenant} deleted")


@admin.command("users")
@click.argument("action", type=click.Choice(["list", "create", "disable", "enable", "delete"]), default="list")
@click.argument("username", required=False, default="")
@click.option("--password-stdin", is_flag=True, help="create: read the password from standard input.")
@output_option()
@pass_state
def users(state: State, action: str, username: str, password_stdin: bool, output: str) -> None:
    """`list`, `create USER` (password prompted), `disable|enable USER`, `delete USER`."""
    from google.protobuf import field_mask_pb2

    from novasphere.v1 import admin_service_pb2 as pb
    from vmctl.output import check_format, emit

    session = state.session()
    stub = _admin(session)
    if action == "list":
        found = session.call(stub.ListUsers, pb.ListUsersRequest())
        columns = (
            ("USER", lambda u: u.username),
            ("DISABLED", lambda u: "yes" if u.disabled else ""),
            ("ROLES", lambda u: ", ".join(f"{b.role}@{b.tenant_id}" for b in u.bindings)),
        )
        emit(list(found.users), check_format(output), columns=columns, kind="user", name=lambda u: u.username)
        return
    _require(username, f"admin users {action} USER")
    if action == "create":
        password = (
            sys.stdin.readline().rstrip("\n")
            if password_stdin
            else click.prompt("Password", hide_input=True, confirmation_prompt=True)
        )
        session.call(stub.CreateUser, pb.CreateUserRequest(username=username, password=password))
        click.echo(f"user/{username} created")
    elif action == "delete":
        session.call(stub.DeleteUser, pb.DeleteUserRequest(username=username))
        click.echo(f"user/{username} deleted")
    else:
        mask = field_mask_pb2.FieldMask(paths=["disabled"])
        request = pb.UpdateUserRequest(username=username, disabled=action == "disable", update_mask=mask)
        session.call(stub.UpdateUser, request)
        click.echo(f"user/{username} {action}d")


@admin.command("roles")
@click.argument("action", type=click.Choice(["list", "put", "delete"]), default="list")
@click.argument("role", required=False, default="")
@click.option("-p", "--permission", "permissions", multiple=True, help="put: its permissions; repeatable.")
@output_option()
@pass_state
def roles(state: State, action: str, role: str, permissions: tuple[str, ...], output: str) -> None:
    """`list`, `put ROLE -p PERMISSION…`, `delete ROLE`."""
    from novasphere.v1 import admin_service_pb2 as pb
    from vmctl.output import check_format, emit

    session = state.session()
    stub = _admin(session)
    if action == "list":
        found = session.call(stub.ListRoles, pb.ListRolesRequest())
        columns = (("ROLE", lambda r: r.name), ("PERMISSIONS", lambda r: ",".join(r.permissions)))
        emit(list(found.roles), check_format(output), columns=columns, kind="role")
        return
    _require(role, f"admin roles {action} ROLE")
    if action == "put":
        session.call(stub.PutRole, pb.PutRoleRequest(name=role, permissions=list(permissions)))
        click.echo(f"role/{role} saved")
    else:
        session.call(stub.DeleteRole, pb.DeleteRoleRequest(name=role))
        click.echo(f"role/{role} deleted")


@admin.command("bindings")
@click.argument("action", type=click.Choice(["list", "create", "delete"]), default="list")
@click.argument("username", required=False, default="")
@click.argument("role", required=False, default="")
@click.option("--tenant", default="", help="Default: your tenant.")
@output_option()
@pass_state
def bindings(state: State, action: str, username: str, role: str, tenant: str, output: str) -> None:
    """`list`, `create USER ROLE`, `delete USER ROLE` (in --tenant, default yours)."""
    from novasphere.v1 import admin_service_pb2 as pb
    from vmctl.output import check_format, emit

    session = state.session()
    stub = _admin(session)
    if action == "list":
        found = session.call(stub.ListRoleBindings, pb.ListRoleBindingsRequest(tenant_id=tenant))
        columns = (("USER", lambda b: b.username), ("TENANT", lambda b: b.tenant_id), ("ROLE", lambda b: b.role))
        emit(
            list(found.role_bindings), check_format(output), columns=columns, kind="binding", name=lambda b: b.username
        )
        return
    _require(username and role, f"admin bindings {action} USER ROLE")
    if action == "create":
        session.call(
            stub.CreateRoleBinding, pb.CreateRoleBindingRequest(username=username, role=role, tenant_id=tenant)
        )
        click.echo(f"binding {username} → {role} created")
    else:
        session.call(
            stub.DeleteRoleBinding, pb.DeleteRoleBindingRequest(username=username, role=role, tenant_id=tenant)
        )
        click.echo(f"binding {username} → {role} deleted")


def _require(given: str, usage: str) -> None:
    if not given:
        raise errors.VmctlError(f"usage: vmctl {usage}", errors.USAGE)


@click.group("ssh-keys")
def ssh_keys() -> None:
    """SSH public keys in a namespace, for a VM's `spec.sshKeySecret`: add, list, delete."""


def _keys_stub(session: Any) -> Any:
    from novasphere.v1.ssh_key_service_pb2_grpc import SshKeyServiceStub

    return SshKeyServiceStub(session.channel)


@ssh_keys.command("add")
@click.argument("name")
@click.option("-f", "--filename", required=True, help="A .pub file (one key per line), or - for stdin.")
@namespaced
@pass_state
def add_key(state: State, name: str, filename: str, namespace: str) -> None:
    from novasphere.v1 import ssh_key_service_pb2
    from vmctl.vm_commands import read_text

    text = sys.stdin.read() if filename == "-" else read_text(filename)
    session = state.session(namespace)
    key = session.call(
        _keys_stub(session).CreateSshKey,
        ssh_key_service_pb2.CreateSshKeyRequest(namespace=session.namespace, name=name, public_key=text),
    )
    click.echo(f"sshkey/{key.name} added in {key.namespace}: {', '.join(key.fingerprints)}")


@ssh_keys.command("list")
@namespaced
@output_option()
@pass_state
def list_ssh_keys(state: State, namespace: str, output: str) -> None:
    from novasphere.v1 import ssh_key_service_pb2
    from vmctl.output import age, check_format, emit

    session = state.session(namespace)
    found = session.call(
        _keys_stub(session).ListSshKeys, ssh_key_service_pb2.ListSshKeysRequest(namespace=session.namespace)
    )
    columns = (
        ("NAME", lambda k: k.name),
        ("KEYS", lambda k: str(len(k.fingerprints))),
        ("FINGERPRINTS", lambda k: ",".join(k.fingerprints)),
        ("BY", lambda k: k.created_by),
        ("AGE", lambda k: age(k.create_time)),
    )
    emit(list(found.ssh_keys), check_format(output), columns=columns, kind="sshkey")


@ssh_keys.command("delete")
@click.argument("name")
@namespaced
@pass_state
def delete_ssh_key(state: State, name: str, namespace: str) -> None:
    from novasphere.v1 import ssh_key_service_pb2

    session = state.session(namespace)
    session.call(
        _keys_stub(session).DeleteSshKey,
        ssh_key_service_pb2.DeleteSshKeyRequest(namespace=session.namespace, name=name),
    )
    click.echo(f"sshkey/{name} deleted")
