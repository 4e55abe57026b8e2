"""The stop request of a serving process: SIGINT or SIGTERM."""

import signal
import threading


def stop_requested() -> threading.Event:
    """An event set by SIGINT or SIGTERM (call from the main thread)."""
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    return stopped
