"""The shadow challenger's own process: loads a challenger folder and scores the rows it is sent.

Started by service/challenger_process.py as `python -m service.challenger_child FD`, with FD one
end of a socket pair. It lowers its own CPU priority before it loads anything (SCHED_IDLE where
Linux allows, else nice 19), so that on a busy machine it runs on CPU time the server's calls
leave over. Messages
are pickled tuples (multiprocessing.connection framing):

  ("load", folder, policy)               -> ("loaded", version) or ("refused", text)
  ("score", matrix)                     -> ("scored", effort, churn, seniors, seconds)
                                           or ("failed", text)

It exits when the other end closes.
"""

import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from features.catalog import MODEL_FEATURES
from service.models import ModelBundle, load_bundle
from service.routing import Router, RoutingPolicy


def lower_priority() -> None:
    """Puts this process at the lowest CPU priority it may take."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19 - os.nice(0))


def serve(connection: Connection) -> None:
    """Answers load and score messages until the parent closes its end."""
    router: Router | None = None
    bundle: ModelBundle | None = None
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "load":
            folder, policy = Path(message[1]), message[2]
            try:
                # The server verified and smoke-scored this folder; the checksums are verified
                # again here, so a folder changed since is refused, not scored.
                bundle = load_bundle(folder, MODEL_FEATURES)
                router = Router(RoutingPolicy.model_validate(policy), bundle)
                bundle.predict(np.zeros((1, len(bundle.feature_names))))  # compiles before use
                connection.send(("loaded", bundle.version))
            except Exception as error:  # refused: the parent logs it and stops shadowing a while
                bundle = router = None
                connection.send(("refused", f"{type(error).__name__}: {error}"))
        elif kind == "score" and bundle is not None and router is not None:
            started = time.perf_counter()
            try:
                matrix = message[1]
                effort, churn = bundle.predict(matrix)
                seniors = router.seniors(matrix, effort, churn)
                connection.send(("scored", effort, churn, seniors,
                                 time.perf_counter() - started))
            except Exception as error:
                connection.send(("failed", f"{type(error).__name__}: {error}"))
        else:
            connection.send(("failed", f"unexpected message {kind!r} (loaded: {bundle is not None})"))


def main() -> None:
    connection = Connection(int(sys.argv[1]))
    lower_priority()
    serve(connection)


if __name__ == "__main__":
    main()
