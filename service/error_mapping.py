"""The interceptor that maps domain errors to AIP-193 statuses with one ErrorInfo, never UNKNOWN."""

import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service.errors import InvalidArgument, Unavailable
from service.wrapping import WrappingInterceptor

ERROR_DOMAIN = "effort.v1"
log = logging.getLogger(__name__)


def error_status(code: int, message: str, reason: str, metadata: dict[str, str],
                 retry_after: float | None = None) -> status_pb2.Status:
    """A google.rpc.Status with one ErrorInfo, and a RetryInfo when `retry_after` is given."""
    details = [error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)]
    if retry_after is not None:
        seconds = int(retry_after)
        details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=seconds, nanos=int((retry_after - seconds) * 1e9))))
    packed = []
    for detail in details:
        packed.append(any_pb2.Any())
        packed[-1].Pack(detail)
    return status_pb2.Status(code=code, message=message, details=packed)


class UndecodableRequest:
    """Stands in for a request whose bytes did not decode, so that the call reaches the handler
    (and the metrics interceptor) and is answered INVALID_ARGUMENT rather than UNKNOWN."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def tolerant_deserializer(deserialize: Callable[[bytes], Any] | None
                          ) -> Callable[[bytes], Any] | None:
    """`deserialize`, returning an UndecodableRequest where it would raise DecodeError."""
    if deserialize is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as error:
            return UndecodableRequest(str(error))

    return decode


def invalid_argument_status(error: InvalidArgument) -> status_pb2.Status:
    """INVALID_ARGUMENT naming the field in the message and in ErrorInfo.metadata['field']."""
    return error_status(code_pb2.INVALID_ARGUMENT, f"{error.field}: {error}", error.reason,
                        {"field": error.field})


class ErrorMappingInterceptor(WrappingInterceptor):
    """Turns domain exceptions into canonical codes so that nothing answers UNKNOWN."""

    def wrap(self, handler: Any, method: str) -> Any:
        if handler is None or handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary

        async def mapped(request: Any, context: Any) -> Any:  # the stubs lack abort_with_status
            try:
                if isinstance(request, UndecodableRequest):
                    raise InvalidArgument("request", "the request bytes do not decode as the "
                                          f"method's message ({request.problem})",
                                          "UNDECODABLE_REQUEST")
                return await behavior(request, context)
            except InvalidArgument as error:
                await context.abort_with_status(rpc_status.to_status(invalid_argument_status(error)))
            except Unavailable as error:
                await context.abort_with_status(rpc_status.to_status(error_status(
                    code_pb2.UNAVAILABLE, str(error), error.reason, {}, error.retry_after)))
            except Exception as error:
                if isinstance(error, grpc.aio.AbortError | grpc.RpcError):
                    raise  # already carries a status (context.abort)
                log.exception("internal error in %s", method)
                await context.abort_with_status(rpc_status.to_status(error_status(
                    code_pb2.INTERNAL, "internal error; see the server log", "INTERNAL", {})))

        return grpc.unary_unary_rpc_method_handler(
            mapped, request_deserializer=tolerant_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer)
