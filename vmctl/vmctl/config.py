"""vmctl's configuration, shaped like a kubeconfig: contexts, each naming a server with its TLS settings, a tenant, a
user and a default namespace, and which one is current; plus the credentials `vmctl login` stored for each context.

YAML at `~/.config/vmctl/config` (`$VMCTL_CONFIG` overrides), written with mode 0600 because it holds refresh
tokens. Without a file (or a context), the environment of a local stack serves: `. .run/env` after `make run` sets
`NOVASPHERE_GRPC`, `NOVASPHERE_CA` and `NOVASPHERE_NAMESPACE`, which vmctl reads as its defaults.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vmctl.errors import USAGE, VmctlError

ENV_CONTEXT = "env"
"""The context made from the environment when the file names none."""


@dataclass
class Context:
    name: str
    server: str
    """`https://host:port` (TLS; Envoy), `http://host:port` (plaintext: a replica on loopback), or `host:port` (TLS)."""
    certificate_authority: str = ""
    insecure_skip_tls_verify: bool = False
    tenant: str = ""
    user: str = ""
    namespace: str = ""


@dataclass
class Credentials:
    context: str
    refresh_token: str = ""
    access_token: str = ""
    access_token_expiry: float = 0.0


@dataclass
class Config:
    path: Path
    current_context: str = ""
    contexts: list[Context] = field(default_factory=list)
    credentials: list[Credentials] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        path = path or default_path()
        if not path.exists():
            return cls(path)
        import yaml

        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise VmctlError(f"{path} is not valid YAML: {error}", USAGE) from error
        return cls(
            path,
            current_context=str(raw.get("current-context") or ""),
            contexts=[_read(Context, item) for item in raw.get("contexts") or []],
            credentials=[_read(Credentials, item) for item in raw.get("credentials") or []],
        )

    def save(self) -> None:
        """Atomically, readable by its owner only."""
        import yaml

        data = {
            "current-context": self.current_context,
            "contexts": [entry(c) for c in self.contexts],
            "credentials": [entry(c) for c in self.credentials],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".config-")
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w") as out:
                yaml.safe_dump(data, out, sort_keys=False)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def context(self, name: str = "") -> Context:
        """The named context, else the current one, else one from the environment."""
        wanted = name or self.current_context
        for context in self.contexts:
            if context.name == wanted:
                return context
        if name:
            known = ", ".join(c.name for c in self.contexts) or "none; see `vmctl config set-context`"
            raise VmctlError(f"no context '{name}' in {self.path} (contexts: {known})", USAGE)
        server = os.environ.get("VMCTL_SERVER") or os.environ.get("NOVASPHERE_GRPC", "")
        if not server:
            raise VmctlError(
                f"no server configured: run `vmctl config set-context NAME --server https://HOST:PORT` (or, after "
                f"`make run`, `. .run/env`); config file {self.path}",
                USAGE,
            )
        return Context(
            ENV_CONTEXT,
            server=server,
            certificate_authority=os.environ.get("VMCTL_CA") or os.environ.get("NOVASPHERE_CA", ""),
            namespace=os.environ.get("VMCTL_NAMESPACE") or os.environ.get("NOVASPHERE_NAMESPACE", ""),
        )

    def put_context(self, context: Context) -> None:
        self.contexts = [c for c in self.contexts if c.name != context.name] + [context]

    def credentials_of(self, context: str) -> Credentials:
        found = next((c for c in self.credentials if c.context == context), None)
        if found is None:
            found = Credentials(context)
            self.credentials.append(found)
        return found

    def forget(self, context: str) -> None:
        self.credentials = [c for c in self.credentials if c.context != context]


def default_path() -> Path:
    configured = os.environ.get("VMCTL_CONFIG")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vmctl" / "config"


def _read(kind: type[Any], item: dict[str, Any]) -> Any:
    names = {f.name for f in fields(kind)}
    return kind(**{key.replace("-", "_"): value for key, value in item.items() if key.replace("-", "_") in names})


def entry(item: Context | Credentials) -> dict[str, Any]:
    """An item as the file holds it (kebab-case keys, empty settings left out)."""
    return {key.replace("_", "-"): value for key, value in asdict(item).items() if value not in ("", 0.0, False)}
