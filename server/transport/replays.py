"""Replays at the transport: the mutating calls whose request has a `request_id` and no lasting record of their own
(VM operations have their Task) run through `Replays.once`, which returns the first answer to a replay. Runs after
authorisation, so a replay is checked like any call, and keyed by the caller.

What identifies a request is its message without the `request_id`, serialised deterministically, so the same request
over gRPC, gRPC-Web or REST is the same; secrets in it are reduced to whether they were given. What a replay gets is
the first response with its secrets cleared (an API key's `key`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from server import auth
from server.replays import Replays
from server.transport.interceptors import Context, Continuation, CoroutineBehaviour, Handler


def _no_change(message: Message) -> None:
    del message


def _password_given(request: Message) -> None:
    """CreateWukong, UpdateWukong: a password counts by its presence only (the digest is stored)."""
    user = request.wukong.spec.cloud_init_user  # type: ignore[attr-defined]
    if user.password:
        user.password = "given"  # noqa: S105 - a marker, not a password


def _credentials_given(request: Message) -> None:
    """RegisterDevice, CreateWebhook: a token, push subscription, webhook URL or signing secret counts by its presence
    only (a webhook's URL carries the robot's key)."""
    fields = request.DESCRIPTOR.fields_by_name
    for name in ("token", "url", "secret"):
        if name in fields and getattr(request, name):
            setattr(request, name, "given")
    if "web_push" in fields and request.HasField("web_push"):
        subscription: Any = getattr(request, "web_push")  # noqa: B009 (a field of some requests only)
        subscription.endpoint = subscription.p256dh = subscription.auth = "given"


def _without_key(response: Message) -> None:
    """CreateApiKey: the key is shown once, to the first call only."""
    response.key = ""  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Replayed:
    request_secrets: Callable[[Message], None] = _no_change
    """Reduces the secrets in a copy of the request before it is digested."""
    response_secrets: Callable[[Message], None] = _no_change
    """Clears the secrets in a copy of the response before it is recorded."""


REPLAYED: dict[str, Replayed] = {
    # CreateWukong also keeps its key on the Wukong, but a replay after the Wukong was deleted must not create it again.
    "/novasphere.v1.WukongService/CreateWukong": Replayed(request_secrets=_password_given),
    "/novasphere.v1.WukongService/UpdateWukong": Replayed(request_secrets=_password_given),
    "/novasphere.v1.AccessService/CreateAccessService": Replayed(),
    "/novasphere.v1.AccessService/DeleteAccessService": Replayed(),
    "/novasphere.v1.AuthService/CreateApiKey": Replayed(response_secrets=_without_key),
    "/novasphere.v1.AuthService/RevokeApiKey": Replayed(),
    "/novasphere.v1.SshKeyService/CreateSshKey": Replayed(),
    "/novasphere.v1.SshKeyService/DeleteSshKey": Replayed(),
    "/novasphere.v1.TaskService/CancelTask": Replayed(),
    "/novasphere.v1.NotificationService/RegisterDevice": Replayed(request_secrets=_credentials_given),
    "/novasphere.v1.NotificationService/DeleteDevice": Replayed(),
    "/novasphere.v1.NotificationService/UpdateNotificationPreferences": Replayed(),
    "/novasphere.v1.NotificationService/CreateWebhook": Replayed(request_secrets=_credentials_given),
    "/novasphere.v1.NotificationService/DeleteWebhook": Replayed(),
}


class ReplayInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, replays: Replays) -> None:
        self._replays = replays

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        replayed = REPLAYED.get(method)
        if handler is None or replayed is None:
            return handler
        behaviour: CoroutineBehaviour | None = getattr(handler, "unary_unary", None)
        assert behaviour is not None, f"{method} is not a unary call"
        response_class = _response_class(method)

        async def once(request: Any, context: Context) -> Message:
            if not request.request_id or getattr(request, "validate_only", False):
                return await behaviour(request, context)  # type: ignore[no-any-return]

            async def run() -> tuple[Message, bytes]:
                response: Message = await behaviour(request, context)
                recorded = type(response)()
                recorded.CopyFrom(response)
                replayed.response_secrets(recorded)
                return response, recorded.SerializeToString(deterministic=True)

            return await self._replays.once(
                auth.current(),
                request_id=request.request_id,
                method=method,
                digest=digest(request, replayed),
                run=run,
                answer=response_class.FromString,
            )

        return grpc.unary_unary_rpc_method_handler(
            once,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def digest(request: Message, replayed: Replayed) -> str:
    identity = type(request)()
    identity.CopyFrom(request)
    identity.request_id = ""  # type: ignore[attr-defined]
    replayed.request_secrets(identity)
    return hashlib.sha256(identity.SerializeToString(deterministic=True)).hexdigest()


def _response_class(method: str) -> type[Message]:
    """The response message of `/package.Service/Method`, from the descriptors the generated code registered."""
    service, _, name = method.lstrip("/").rpartition("/")
    descriptor = descriptor_pool.Default().FindServiceByName(service).FindMethodByName(name)
    return message_factory.GetMessageClass(descriptor.output_type)
