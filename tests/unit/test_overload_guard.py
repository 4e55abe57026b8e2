"""The overload guard refuses to start, in one line, without HAProxy."""

import pytest

from service import overload_guard
from service.overload_guard import GuardError, OverloadGuard
from service.settings import Settings


def test_without_haproxy_the_guard_refuses_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overload_guard, "haproxy_binary", lambda: None)
    with pytest.raises(GuardError) as refused:
        OverloadGuard(Settings(overload_guard=True), [41001])
    assert str(refused.value) == ("EFFORT_OVERLOAD_GUARD=true needs haproxy on the PATH "
                                  "(Debian's haproxy package; `make haproxy` installs it)")
