"""Serves streaming handlers that write through `context.write` as async generators.

grpc.aio accepts both forms of a server-streaming handler, but the metrics interceptor
(py-async-grpc-prometheus) iterates the handler's result, so a handler that writes through the
context, such as grpc's own Health.Watch, failed under it with UNKNOWN. Adapted here, every
message it writes is yielded instead, and the interceptors above see an ordinary stream.
"""

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from service.wrapping import WrappingInterceptor

_END = object()


class _QueueWriter:
    """The call's context, except that `write` hands messages to the generator."""

    def __init__(self, context: Any, queue: "asyncio.Queue[Any]") -> None:
        self._context = context
        self._queue = queue

    async def write(self, message: Any) -> None:
        await self._queue.put(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def as_generator(behavior: Callable[[Any, Any], Awaitable[None]],
                 open_streams: "set[asyncio.Queue[Any]]"
                 ) -> Callable[[Any, Any], AsyncIterator[Any]]:
    """A server-streaming behavior that yields what `behavior` writes to its context; its queue
    is in `open_streams` while it runs, so that putting _END there ends the stream with OK."""

    async def streamed(request: Any, context: Any) -> AsyncIterator[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.ensure_future(behavior(request, _QueueWriter(context, queue)))
        task.add_done_callback(lambda _: queue.put_nowait(_END))
        open_streams.add(queue)
        try:
            while (message := await queue.get()) is not _END:
                yield message
            if task.done():
                task.result()  # the handler's own error or abort, as it raised it
        finally:
            open_streams.discard(queue)
            task.cancel()

    return streamed


class StreamAdapterInterceptor(WrappingInterceptor):
    """Turns server-streaming handlers written with `context.write` into async generators."""

    def __init__(self) -> None:
        super().__init__()
        self._open_streams: set[asyncio.Queue[Any]] = set()

    def end_streams(self) -> None:
        """Ends every adapted stream with OK after what it has written (at shutdown: a Watch
        never ends by itself, and would hold the server's stop for its whole grace period)."""
        for queue in self._open_streams:
            queue.put_nowait(_END)

    def wrap(self, handler: Any, method: str) -> Any:
        if (handler is None or handler.unary_stream is None
                or inspect.isasyncgenfunction(handler.unary_stream)):
            return handler
        return grpc.unary_stream_rpc_method_handler(
            as_generator(handler.unary_stream, self._open_streams),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
