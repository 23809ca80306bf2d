"""Bearer-token authentication as a gRPC server interceptor.

Clients send metadata `authorization: Bearer <token>`. Health checks stay open
so orchestrators (Ray, Kubernetes probes) can probe without the secret. The
token is never logged or echoed in error messages.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc

OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, token: str, open_prefixes: tuple[str, ...] = OPEN_METHOD_PREFIXES) -> None:
        if not token:
            raise ValueError("token must be non-empty (pass token=None to disable auth)")
        self._expected = f"Bearer {token}".encode()
        self._open_prefixes = open_prefixes

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method.startswith(self._open_prefixes):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None or self._authorized(handler_call_details.invocation_metadata):
            return handler
        return _deny(handler)

    def _authorized(self, metadata: Any) -> bool:
        supplied = b""
        for key, value in metadata or ():
            if key == "authorization":
                supplied = value.encode() if isinstance(value, str) else value
                break
        # Constant-time comparison: response timing must not reveal the token.
        return hmac.compare_digest(supplied, self._expected)


def _deny(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that answers UNAUTHENTICATED."""
    message = "missing or invalid league token (metadata 'authorization: Bearer <token>')"

    def abort(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    # The shape must match the real method, or streaming calls would misbehave.
    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return make(
        abort,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
