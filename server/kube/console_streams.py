"""KubeVirt's console websockets (`virtualmachineinstances/{vnc,console}`, kubevirt.md §2), opened through
kube-apiserver with the API's own credentials, as `virtctl` does: subprotocol `plain.kubevirt.io`, raw bytes in
binary frames. A refusal before the upgrade (VMI not running, a VNC session held with `preserveSession`) comes back
as `ConsoleRefused` with kube-apiserver's status code and message."""

from __future__ import annotations

import ssl
import urllib.parse
from typing import Literal

import aiohttp

from server.kube.client import KubeClient

PROTOCOL = "plain.kubevirt.io"
HANDSHAKE_SECONDS = 10.0  # KubeVirt's own upgrade timeout
Subresource = Literal["vnc", "console"]


class ConsoleRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class ConsoleDialer:
    """One aiohttp session (connection pool, TLS context) for every console the process proxies."""

    def __init__(self, kube: KubeClient) -> None:
        configuration = kube.api_client.configuration
        self._configuration = configuration
        self._base = str(configuration.host).rstrip("/")
        self._ssl: ssl.SSLContext | bool = False
        if self._base.startswith("https://"):
            context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
            if configuration.cert_file:
                context.load_cert_chain(configuration.cert_file, configuration.key_file)
            if not configuration.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl = context
        self._session: aiohttp.ClientSession | None = None

    async def open(
        self, *, namespace: str, vmi: str, subresource: Subresource, preserve_session: bool
    ) -> aiohttp.ClientWebSocketResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=HANDSHAKE_SECONDS))
        base = self._base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        path = (
            f"/apis/subresources.kubevirt.io/v1/namespaces/{urllib.parse.quote(namespace)}/virtualmachineinstances/"
            f"{urllib.parse.quote(vmi)}/{subresource}"
        )
        query = f"?preserveSession={'true' if preserve_session else 'false'}" if subresource == "vnc" else ""
        try:
            return await self._session.ws_connect(
                base + path + query,
                protocols=(PROTOCOL,),
                headers=self._auth_headers(),
                ssl=self._ssl,
                max_msg_size=0,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
        except aiohttp.WSServerHandshakeError as error:
            raise ConsoleRefused(error.status, error.message) from error

    def _auth_headers(self) -> dict[str, str]:
        """The bearer token as the client library would send it (re-read when it rotates in a pod)."""
        configuration = self._configuration
        if configuration.refresh_api_key_hook is not None:
            configuration.refresh_api_key_hook(configuration)
        settings = configuration.auth_settings().values()
        return {str(s["key"]): str(s["value"]) for s in settings if s.get("in") == "header" and s.get("value")}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
