"""Signing in and out, who am I, can I, the version, and shell completion."""

from __future__ import annotations

import sys

import click

from vmctl import __version__, errors
from vmctl.cli import COMPLETE_VARIABLE, State, pass_state


def register(cli: click.Group) -> None:
    for command in (login, logout, whoami, version, completion):
        cli.add_command(command)
    cli.add_command(auth)


@click.command()
@click.option("-u", "--username", prompt=True, help="Your user name.")
@click.option("--tenant", default="", help="The tenant to work in (default: your only or first one).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@pass_state
def login(state: State, username: str, tenant: str, password_stdin: bool) -> None:
    """Sign in; the context keeps a refresh token and vmctl renews access tokens by itself."""
    import grpc

    from novasphere.v1 import auth_service_pb2
    from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub

    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("Password", hide_input=True)
    session = state.session()
    if session.context.name not in {c.name for c in session.config.contexts}:
        session.config.put_context(session.context)  # remember the environment's server with the login
        session.config.current_context = session.context.name
    request = auth_service_pb2.LoginRequest(username=username, password=password, tenant_id=tenant)
    try:  # not session.call: stored credentials, maybe expired ones, have no part in a login
        response = AuthServiceStub(session.channel).Login(request, timeout=30)
    except grpc.RpcError as error:
        raise errors.from_rpc(error) from error
    session.context.user, session.context.tenant = username, response.identity.tenant_id
    session.config.put_context(session.context)
    session.store(response)
    click.echo(f"Logged in to {session.context.server} as {username} (tenant {response.identity.tenant_id}).")


@click.command()
@pass_state
def logout(state: State) -> None:
    """End the session on the server and forget its tokens."""
    from novasphere.v1 import auth_service_pb2
    from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub

    session = state.session()
    stored = session.config.credentials_of(session.context.name)
    if stored.refresh_token:
        try:
            session.call(AuthServiceStub(session.channel).Logout, auth_service_pb2.LogoutRequest())
        except errors.VmctlError as error:
            if error.exit_code != errors.UNAUTHENTICATED:  # ended already: nothing more to end
                raise
    session.config.forget(session.context.name)
    session.config.save()
    click.echo(f"Logged out of {session.context.server}.")


@click.command()
@pass_state
def whoami(state: State) -> None:
    """Who the API takes you for: user, tenant and permissions."""
    from novasphere.v1 import auth_service_pb2
    from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub

    session = state.session()
    me = session.call(AuthServiceStub(session.channel).Me, auth_service_pb2.MeRequest())
    click.echo(f"{me.username} in tenant {me.tenant_id}: {', '.join(me.permissions) or 'no permissions'}")


@click.group()
def auth() -> None:
    """Ask the API about your permissions."""


@auth.command("can-i")
@click.argument("operation")
@pass_state
def can_i(state: State, operation: str) -> None:
    """Whether you may perform OPERATION, e.g. `vm:start` or `task:query` (exit code 4 if not)."""
    from novasphere.v1 import auth_service_pb2
    from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub

    resource, _, action = operation.partition(":")
    if not action:
        raise errors.VmctlError(f"'{operation}' is not RESOURCE:OPERATION, e.g. vm:start", errors.USAGE)
    session = state.session()
    answer = session.call(
        AuthServiceStub(session.channel).CheckPermission,
        auth_service_pb2.CheckPermissionRequest(resource_type=resource, operation=action),
    )
    click.echo("yes" if answer.has_permission else "no")
    if not answer.has_permission:
        sys.exit(errors.DENIED)


@click.command()
@pass_state
def version(state: State) -> None:
    """The client's version, and whether the server answers (the standard gRPC health check)."""
    click.echo(f"Client: vmctl {__version__}")
    import grpc

    session = state.session()
    check = session.channel.unary_unary(
        "/grpc.health.v1.Health/Check", request_serializer=bytes, response_deserializer=bytes, _registered_method=False
    )
    try:
        answer = check(b"", timeout=10)
    except grpc.RpcError as error:
        raise errors.from_rpc(error) from error
    status = "serving" if answer == b"\x08\x01" else "not serving"  # HealthCheckResponse{status: SERVING}
    from novasphere.v1 import auth_service_pb2
    from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub

    release = "(its version is shown to callers with credentials: vmctl login)"
    if len(session.metadata()) > 1:  # credentials besides the client type
        release = session.call(AuthServiceStub(session.channel).Me, auth_service_pb2.MeRequest()).server_version
    click.echo(f"Server: NovaSphere API {release} at {session.context.server} ({status})")


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL, e.g. `source <(vmctl completion bash)`."""
    from click.shell_completion import get_completion_class

    root = ctx.find_root().command
    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(root, {}, "vmctl", COMPLETE_VARIABLE).source())
