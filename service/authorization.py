"""Checks each call's bearer token and scope before any work: UNAUTHENTICATED or PERMISSION_DENIED.

Health checks need no token (probes); reflection needs any valid token; every other method needs
the scope REQUIRED_SCOPES names. Writes and admin calls are logged with the client's name.
"""

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.rpc import code_pb2
from grpc_status import rpc_status

from service import metrics
from service.authentication import Authenticator, AuthFailure, Principal
from service.error_mapping import error_status
from service.wrapping import WrappingInterceptor

REQUIRED_SCOPES = {
    "/effort.v1.ScoringService/Score": "score",
    "/effort.v1.ScoringService/ScoreBatch": "score",
    "/effort.v1.JourneyService/RecordEvents": "record",
    "/effort.v1.AdminService/GetModel": "admin",
    "/effort.v1.AdminService/ReloadModel": "admin",
}
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/",)
AUDITED = frozenset({"/effort.v1.JourneyService/RecordEvents", "/effort.v1.AdminService/GetModel",
                     "/effort.v1.AdminService/ReloadModel"})
audit_log = logging.getLogger("effort.audit")


class _Refused(Exception):
    """A call refused before its handler ran, with the status to answer."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


def authorize(authenticator: Authenticator, method: str, metadata: Any) -> Principal:
    """The caller of `method`, or _Refused; counted in effort_auth_failures_total by reason."""
    header = next((value for key, value in metadata or () if key == "authorization"), None)
    try:
        principal = authenticator.authenticate(header)
    except AuthFailure as failure:
        metrics.AUTH_FAILURES_TOTAL.labels(reason=failure.reason.lower()).inc()
        raise _Refused(code_pb2.UNAUTHENTICATED, failure.reason, str(failure)) from None
    scope = REQUIRED_SCOPES.get(method)
    if scope is not None and scope not in principal.scopes:
        metrics.AUTH_FAILURES_TOTAL.labels(reason="scope_missing").inc()
        raise _Refused(code_pb2.PERMISSION_DENIED, "SCOPE_MISSING",
                       f"client {principal.name!r} lacks the {scope!r} scope this method needs")
    return principal


async def _abort(context: Any, refused: _Refused, method: str) -> None:
    metadata = {"method": method.rsplit("/", 1)[-1]}
    await context.abort_with_status(rpc_status.to_status(
        error_status(refused.code, str(refused), refused.reason, metadata)))


class AuthorizationInterceptor(WrappingInterceptor):
    """Applies `authorize` to every method but health checks, when authentication is on."""

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__()
        self._authenticator = authenticator

    def wrap(self, handler: Any, method: str) -> Any:
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        if handler.unary_unary is not None:
            return self._unary(handler, method)
        if handler.stream_stream is not None:  # reflection
            return self._stream(handler, method)
        return handler  # no other kinds are served

    def _unary(self, handler: Any, method: str) -> Any:
        behavior, authenticator = handler.unary_unary, self._authenticator
        audited = method in AUDITED

        async def checked(request: Any, context: Any) -> Any:
            try:
                principal = authorize(authenticator, method, context.invocation_metadata())
            except _Refused as refused:
                await _abort(context, refused, method)
            if not audited:
                return await behavior(request, context)
            try:
                response = await behavior(request, context)
            except BaseException:
                audit_log.info("%s called %s: failed", principal.name, method)
                raise
            audit_log.info("%s called %s: OK", principal.name, method)
            return response

        return grpc.unary_unary_rpc_method_handler(
            checked, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)

    def _stream(self, handler: Any, method: str) -> Any:
        behavior, authenticator = handler.stream_stream, self._authenticator

        async def checked(requests: Any, context: Any) -> AsyncIterator[Any]:
            try:
                authorize(authenticator, method, context.invocation_metadata())
            except _Refused as refused:
                await _abort(context, refused, method)
            async for response in behavior(requests, context):
                yield response

        return grpc.stream_stream_rpc_method_handler(
            checked, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
