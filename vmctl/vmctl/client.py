"""The connection to the API: a gRPC channel for the chosen context (TLS with its CA, or plaintext to a replica),
and the credentials every call carries: `--token`/`$VMCTL_TOKEN` (or the UI guide's `$VM_TOKEN`), `--api-key`/
`$VMCTL_API_KEY`, or the login stored for the context, whose access token is refreshed before it expires and
again when the API says it has."""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc

from vmctl import errors
from vmctl.config import Config, Context

T = TypeVar("T")
REFRESH_MARGIN_SECONDS = 30.0
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Given:
    """Credentials and connection settings from flags or the environment, over the context's."""

    context: str = ""
    server: str = ""
    token: str = ""
    api_key: str = ""
    namespace: str = ""

    @classmethod
    def from_env(cls, *, context: str, server: str, token: str, api_key: str, namespace: str) -> Given:
        return cls(
            context=context,
            server=server,
            token=token or os.environ.get("VMCTL_TOKEN") or os.environ.get("VM_TOKEN", ""),
            api_key=api_key or os.environ.get("VMCTL_API_KEY", ""),
            namespace=namespace,
        )


def channel_for(context: Context) -> grpc.Channel:
    parts = urlsplit(context.server if "://" in context.server else f"https://{context.server}")
    if not parts.hostname or not parts.port:
        raise errors.VmctlError(f"server '{context.server}' is not https://HOST:PORT or http://HOST:PORT", errors.USAGE)
    target = f"{parts.hostname}:{parts.port}"
    options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    if parts.scheme == "http":
        return grpc.insecure_channel(target, options=options)
    if context.insecure_skip_tls_verify:
        root, name = _presented_root(parts.hostname, parts.port)
        options.append(("grpc.ssl_target_name_override", name))
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(root), options=options)
    root_pem = None
    if context.certificate_authority:
        try:
            with open(context.certificate_authority, "rb") as ca:
                root_pem = ca.read()
        except OSError as error:
            raise errors.VmctlError(
                f"cannot read the CA file {context.certificate_authority}: {error.strerror}", errors.USAGE
            ) from error
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_pem), options=options)


def _presented_root(host: str, port: int) -> tuple[bytes, str]:
    """--insecure-skip-tls-verify: trust whatever certificate chain the server presents (its last certificate as the
    root), and the first name in its leaf. Anyone on the path could pose as the server: for trying things out only.
    Python exposes the presented chain only privately before 3.13."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=10) as raw,
            unverified.wrap_socket(raw, server_hostname=host) as tls,
        ):
            chain = [c.public_bytes(ssl._ssl.ENCODING_PEM) for c in tls._sslobj.get_unverified_chain()]  # type: ignore
    except OSError as error:
        raise errors.VmctlError(f"cannot reach {host}:{port}: {error}", errors.UNAVAILABLE) from error
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as leaf:
        leaf.write(chain[0])
        leaf.flush()
        decoded = ssl._ssl._test_decode_cert(leaf.name)  # type: ignore[attr-defined]
    names = [value for kind, value in decoded.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]
    return chain[-1].encode(), (names or [host])[0]


class Session:
    """One context's channel and credentials; `call` adds them and turns refusals into `VmctlError`s."""

    def __init__(self, config: Config, given: Given) -> None:
        self.config = config
        self.context = config.context(given.context)
        if given.server:
            self.context = Context(**{**vars(self.context), "server": given.server})
        self.namespace = given.namespace or self.context.namespace
        self._given = given
        self._channel: grpc.Channel | None = None

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = channel_for(self.context)
        return self._channel

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()

    def stub(self, stub_class: Callable[[grpc.Channel], T]) -> T:
        return stub_class(self.channel)

    def metadata(self) -> list[tuple[str, str]]:
        return [("x-client-type", "cli"), *self._credentials()]

    def _credentials(self) -> list[tuple[str, str]]:
        if self._given.api_key:
            return [("x-api-key", self._given.api_key)]
        if self._given.token:
            return [("authorization", f"Bearer {self._given.token}")]
        stored = self.config.credentials_of(self.context.name)
        if stored.refresh_token and (
            not stored.access_token or stored.access_token_expiry - time.time() < REFRESH_MARGIN_SECONDS
        ):
            self.refresh()
        token = self.config.credentials_of(self.context.name).access_token
        return [("authorization", f"Bearer {token}")] if token else []

    def refresh(self) -> None:
        from novasphere.v1 import auth_service_pb2
        from novasphere.v1.auth_service_pb2_grpc import AuthServiceStub

        stored = self.config.credentials_of(self.context.name)
        try:
            response = AuthServiceStub(self.channel).Refresh(
                auth_service_pb2.RefreshRequest(refresh_token=stored.refresh_token), timeout=DEFAULT_TIMEOUT
            )
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                self.config.forget(self.context.name)
                self.config.save()
                raise errors.VmctlError(
                    "your login has ended (expired, revoked or logged out): run `vmctl login`", errors.UNAUTHENTICATED
                ) from error
            raise errors.from_rpc(error) from error
        self.store(response)

    def store(self, response: Any) -> None:
        """Keeps a LoginResponse's tokens for this context."""
        stored = self.config.credentials_of(self.context.name)
        stored.access_token = response.access_token
        stored.access_token_expiry = response.expire_time.seconds
        if response.refresh_token:
            stored.refresh_token = response.refresh_token
        self.config.save()

    def call(self, method: Callable[..., T], request: Any, *, timeout: float = DEFAULT_TIMEOUT) -> T:
        """A unary call with credentials; a stored login is refreshed once if the API says the token expired."""
        for attempt in range(2):
            try:
                return method(request, metadata=self.metadata(), timeout=timeout)
            except grpc.RpcError as error:
                if attempt == 0 and error.code() == grpc.StatusCode.UNAUTHENTICATED and self._refreshable():
                    self.refresh()
                    continue
                raise errors.from_rpc(error) from error
        raise AssertionError("unreachable")

    def stream(self, method: Callable[..., Iterator[T]], request: Any, *, timeout: float | None = None) -> Iterator[T]:
        """A server stream with credentials, cancelled when the caller stops reading; refusals become
        `VmctlError`s."""
        call = method(request, metadata=self.metadata(), timeout=timeout)
        try:
            yield from call
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.CANCELLED:
                return
            raise errors.from_rpc(error) from error
        finally:
            call.cancel()  # type: ignore[attr-defined]

    def _refreshable(self) -> bool:
        return not (self._given.token or self._given.api_key) and bool(
            self.config.credentials_of(self.context.name).refresh_token
        )
