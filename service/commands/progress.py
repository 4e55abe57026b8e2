"""Progress bars on stderr for long-running commands."""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


def _bar(total: int | None, what: str) -> tqdm:
    """A bar counting `what` on stderr; the last word of `what` is the unit."""
    return tqdm(total=total, desc=what, unit=" " + what.split()[-1], file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)


@contextmanager
def progress_bar(total: int | None, what: str) -> Iterator[Callable[[int], None]]:
    """A bar counting `what`; yields the function that advances it."""
    with _bar(total, what) as bar:
        yield bar.update


class ProgressBars:
    """Bars for a sequence of steps: each new step closes the previous step's bar."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None

    def __call__(self, what: str, total: int | None) -> Callable[[int], None]:
        """Starts the bar of the next step and returns the function that advances it."""
        self.close()
        self._bar = _bar(total, what)
        return self._bar.update

    def close(self) -> None:
        """Closes the current bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
