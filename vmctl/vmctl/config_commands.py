"""`vmctl config`: contexts, as `kubectl config` has them."""

from __future__ import annotations

import click

from vmctl import errors


def register(cli: click.Group) -> None:
    cli.add_command(config)


@click.group()
def config() -> None:
    """Contexts: which server, CA, tenant, user and namespace vmctl uses."""


@config.command("get-contexts")
def get_contexts() -> None:
    from vmctl.config import Config
    from vmctl.output import table

    loaded = Config.load()
    table(
        [
            ("CURRENT", lambda c: "*" if c.name == loaded.current_context else ""),
            ("NAME", lambda c: c.name),
            ("SERVER", lambda c: c.server),
            ("TENANT", lambda c: c.tenant),
            ("USER", lambda c: c.user),
            ("NAMESPACE", lambda c: c.namespace),
        ],
        loaded.contexts,
    )


@config.command("current-context")
def current_context() -> None:
    from vmctl.config import Config

    loaded = Config.load()
    if not loaded.current_context:
        raise errors.VmctlError(f"no current context in {loaded.path}", errors.NOT_FOUND)
    click.echo(loaded.current_context)


@config.command("use-context")
@click.argument("name")
def use_context(name: str) -> None:
    from vmctl.config import Config

    loaded = Config.load()
    loaded.context(name)  # it must exist
    loaded.current_context = name
    loaded.save()
    click.echo(f'Switched to context "{name}".')


@config.command("set-context")
@click.argument("name")
@click.option("--server", default=None, help="https://HOST:PORT (Envoy, TLS) or http://HOST:PORT (a replica).")
@click.option("--certificate-authority", default=None, help="The CA file that signed the server's certificate.")
@click.option("--insecure-skip-tls-verify", type=bool, default=None, help="Trust any certificate (testing only).")
@click.option("--tenant", default=None)
@click.option("--user", default=None)
@click.option("--namespace", default=None, help="The default namespace of commands.")
@click.option("--current", is_flag=True, help="Make it the current context.")
def set_context(name: str, current: bool, **settings: str | bool | None) -> None:
    """Create a context, or change the given settings of one."""
    from vmctl.config import Config, Context

    loaded = Config.load()
    existing = next((c for c in loaded.contexts if c.name == name), None)
    if existing is None and not settings.get("server"):
        raise errors.VmctlError(f"context '{name}' is new: give --server", errors.USAGE)
    context = existing or Context(name, server="")
    for key, value in settings.items():
        if value is not None:
            setattr(context, key, value)
    loaded.put_context(context)
    if current or not loaded.current_context:
        loaded.current_context = name
    loaded.save()
    click.echo(f'Context "{name}" {"modified" if existing else "created"}.')


@config.command("view")
def view() -> None:
    """The config file, tokens redacted."""
    import yaml

    from vmctl.config import Config, entry

    loaded = Config.load()
    data = {
        "current-context": loaded.current_context,
        "contexts": [entry(c) for c in loaded.contexts],
        "credentials": [
            {key: "REDACTED" if key.endswith("token") else value for key, value in entry(c).items()}
            for c in loaded.credentials
        ],
    }
    click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
