"""The connection to the API: a gRPC channel for the chosen context (TLS with its CA, or plaintext to a replica),
and the credentials every call carries: `--token`/`$VMCTL_TOKEN` (or the UI guide's `$VM_TOKEN`), `--api-key`/
`$VMCTL_API_KEY`, or the login stored for the context, whose access token is refreshed before it expires and
again when the API says it has."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
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
        return grpc.insecure_channel(_unverified_tunnel(parts.hostname, parts.port), options=options)
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


def _unverified_tunnel(host: str, port: int) -> str:
    """--insecure-skip-tls-verify: a loopback listener whose connections are carried over TLS to the server without
    checking its certificate (gRPC's own TLS always verifies); the channel speaks plaintext HTTP/2 to the listener.
    Anyone on the path could pose as the server: for trying things out only."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    unverified.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while True:
            local, _ = listener.accept()
            try:
                remote = unverified.wrap_socket(
                    socket.create_connection((host, port), timeout=10), server_hostname=host
                )
                remote.settimeout(None)
            except OSError:
                local.close()
                continue
            threading.Thread(target=pipe, args=(local, remote), daemon=True).start()
            threading.Thread(target=pipe, args=(remote, local), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return f"127.0.0.1:{listener.getsockname()[1]}"


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
