"""Admission control: sheds calls with RESOURCE_EXHAUSTED, ErrorInfo and RetryInfo; health exempt.

A call is shed when the calls in progress reach their limit (batches and writes run in threads
and are counted while they run), or when its deadline leaves less time than an answer takes, so
that the server does no work whose answer the caller would not wait for. A shed answer costs a
fraction of a scored one.

What this cannot see: grpc.aio takes one call at a time from gRPC's core and Score runs on the
event loop, so calls that have arrived but not been taken wait outside Python's sight. Measured on
a 2-core machine with the load generator beside the server, that backlog formed in the client and
the connections, not in the server's own queue (BENCHMARKS.md, admission control).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from service import metrics
from service.error_mapping import error_status
from service.wrapping import WrappingInterceptor

# Methods never shed: probes must see the server even when it is overloaded.
EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# Methods that keep their own deadline, so admission does not judge it for them: a batch answers
# the customers it could not score in time as degraded, and a write answers UNAVAILABLE at it.
SELF_BOUNDED = frozenset({"/effort.v1.ScoringService/ScoreBatch",
                          "/effort.v1.JourneyService/RecordEvents"})
MIN_RETRY_SECONDS = 0.05
MAX_RETRY_SECONDS = 1.0
SERVICE_TIME_WEIGHT = 0.05  # of each new call in the moving average of call durations


@dataclass(frozen=True)
class Shed:
    """Why a call was refused and when to try again."""

    reason: str  # the label of effort_shed_total and ErrorInfo.metadata["limit"]
    message: str
    retry_after: float


class AdmissionControl:
    """Decides per call, on the serving loop (one thread), whether to admit or shed it."""

    def __init__(self, max_in_flight: int,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._max_in_flight = max_in_flight
        self._clock = clock
        self._in_flight = 0
        self.closing = False  # set at shutdown: every new call is refused UNAVAILABLE
        # Per method, the moving average of admitted calls' durations, seconds.
        self._service_time: dict[str, float] = {}

    @property
    def in_flight(self) -> int:
        """Admitted calls not yet answered."""
        return self._in_flight

    def admit(self, method: str, time_remaining: float | None) -> Shed | None:
        """None to go ahead (then call `done` when the call ends), or why the call is shed."""
        takes = self._service_time.get(method, 0.0)
        retry = min(MAX_RETRY_SECONDS, max(MIN_RETRY_SECONDS, takes))
        if self._in_flight >= self._max_in_flight:
            return Shed("in_flight", f"{self._in_flight} calls in progress, the limit", retry)
        if time_remaining is not None and time_remaining < takes and method not in SELF_BOUNDED:
            return Shed("deadline", f"{time_remaining * 1000:.1f} ms left before the deadline, "
                        f"less than this method takes ({takes * 1000:.1f} ms)", retry)
        self._in_flight += 1
        metrics.CALLS_IN_FLIGHT.set(self._in_flight)
        return None

    def done(self, method: str, started: float) -> None:
        """An admitted call ended; `started` is the clock reading taken when it was admitted."""
        self._in_flight -= 1
        metrics.CALLS_IN_FLIGHT.set(self._in_flight)
        took = self._clock() - started
        average = self._service_time.get(method, took)
        self._service_time[method] = average + SERVICE_TIME_WEIGHT * (took - average)

    def now(self) -> float:
        """The admission clock, for `done`."""
        return self._clock()


def overloaded_status(shed: Shed) -> status_pb2.Status:
    """RESOURCE_EXHAUSTED with one ErrorInfo (reason OVERLOADED) and a RetryInfo."""
    return error_status(code_pb2.RESOURCE_EXHAUSTED, f"overloaded, shed: {shed.message}; retry "
                        f"after {shed.retry_after * 1000:.0f} ms", "OVERLOADED",
                        {"limit": shed.reason}, shed.retry_after)


class AdmissionInterceptor(WrappingInterceptor):
    """Applies AdmissionControl to every unary call except health checks and reflection."""

    def __init__(self, control: AdmissionControl) -> None:
        super().__init__()
        self._control = control

    def wrap(self, handler: Any, method: str) -> Any:
        if handler is None or handler.unary_unary is None or method.startswith(EXEMPT_PREFIXES):
            return handler
        behavior, control = handler.unary_unary, self._control

        async def admitted(request: Any, context: Any) -> Any:
            if control.closing:
                await context.abort_with_status(rpc_status.to_status(error_status(
                    code_pb2.UNAVAILABLE, "the server is shutting down; call another replica",
                    "SHUTTING_DOWN", {}, 0.0)))
            shed = control.admit(method, context.time_remaining())
            if shed is not None:
                metrics.SHED_TOTAL.labels(reason=shed.reason).inc()
                await context.abort_with_status(rpc_status.to_status(overloaded_status(shed)))
            started = control.now()
            try:
                return await behavior(request, context)
            finally:
                control.done(method, started)

        return grpc.unary_unary_rpc_method_handler(
            admitted, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
