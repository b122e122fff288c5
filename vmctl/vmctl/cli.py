"""vmctl's commands. Only click is imported up front: the gRPC stubs, YAML and rich load in the commands that use
them, so `vmctl version` and `vmctl get` start fast."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from vmctl import __version__, errors

F = TypeVar("F", bound=Callable[..., Any])
COMPLETE_VARIABLE = "_VMCTL_COMPLETE"


@dataclass
class State:
    """What the global flags chose; the session (config, channel, credentials) is made when a command needs it."""

    context: str = ""
    server: str = ""
    token: str = ""
    api_key: str = ""
    _session: Any = field(default=None, repr=False)

    def session(self, namespace: str = "") -> Any:
        from vmctl.client import Given, Session
        from vmctl.config import Config

        if self._session is None:
            given = Given.from_env(
                context=self.context, server=self.server, token=self.token, api_key=self.api_key, namespace=namespace
            )
            self._session = Session(Config.load(), given)
        elif namespace:
            self._session.namespace = namespace
        return self._session


pass_state = click.make_pass_decorator(State)


def namespaced(function: F) -> F:
    return click.option("-n", "--namespace", default="", help="The namespace (default: the context's).")(function)


def output_option(default: str = "table") -> Callable[[F], F]:
    def decorate(function: F) -> F:
        return click.option(
            "-o",
            "--output",
            default=default,
            show_default=True,
            help="table, wide, json, yaml, name or custom-columns=HEADER:.path,...",
        )(function)

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--context", default="", help="The context in the config file to use (default: its current one).")
@click.option("--server", default="", help="Override the context's server, e.g. https://127.0.0.1:8443.")
@click.option("--token", default="", help="An access token ($VMCTL_TOKEN, $VM_TOKEN).")
@click.option("--api-key", default="", help="An API key ($VMCTL_API_KEY).")
@click.version_option(__version__, "--client-version", message="vmctl %(version)s")
@click.pass_context
def cli(ctx: click.Context, context: str, server: str, token: str, api_key: str) -> None:
    """vmctl controls NovaSphere VMs (Wukongs) through the NovaSphere API.

    \b
    Exit codes: 0 ok, 1 an operation failed, 2 usage or invalid input, 3 not signed in, 4 permission denied,
    5 not found, 6 conflict (changed meanwhile, exists, wrong state), 7 unavailable or rate limited.
    """
    ctx.obj = State(context=context, server=server, token=token, api_key=api_key)


def main() -> None:
    """The console script: VmctlError and refusals print as one line on stderr and exit with their code."""
    from vmctl import (
        admin_commands,
        auth_commands,
        config_commands,
        console_commands,
        edit_command,
        notification_commands,
        task_commands,
        vm_commands,
    )

    modules = (
        auth_commands,
        config_commands,
        task_commands,
        vm_commands,
        edit_command,
        console_commands,
        admin_commands,
        notification_commands,
    )
    for module in modules:
        module.register(cli)
    if COMPLETE_VARIABLE in os.environ:  # a shell asking for completions (the script `vmctl completion` prints)
        cli.main(prog_name="vmctl", complete_var=COMPLETE_VARIABLE)
        return
    state: State | None = None
    try:
        with cli.make_context("vmctl", sys.argv[1:]) as ctx:
            state = ctx.obj
            cli.invoke(ctx)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.UsageError as error:  # one line, like every other error
        where = error.ctx.command_path if error.ctx else "vmctl"
        print(f"error: {error.format_message()} (see `{where} --help`)", file=sys.stderr)
        sys.exit(errors.USAGE)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(errors.FAILED)
    except errors.VmctlError as error:
        print(f"error: {error.message}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if state is not None and state._session is not None:
            state._session.close()
