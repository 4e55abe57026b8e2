"""The process's serving event loop, run in a daemon thread, and a way to run coroutines on it.

The gRPC server is grpc.aio; running its loop in a background thread keeps starting and stopping
plain function calls for the CLI, the worker processes and the tests.
"""

import asyncio
import functools
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


@functools.cache
def serving_loop() -> asyncio.AbstractEventLoop:
    """The process's serving loop, started on first use."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="grpc-aio-loop", daemon=True).start()
    return loop


def run_on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine on the serving loop and waits for its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, serving_loop()).result()
