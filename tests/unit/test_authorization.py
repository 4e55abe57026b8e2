"""Scopes per method: each call's token is checked, and refusals are counted by reason."""

from pathlib import Path

import pytest
from google.rpc import code_pb2
from prometheus_client import REGISTRY

from service.authentication import Authenticator
from service.authorization import REQUIRED_SCOPES, _Refused, authorize
from service.tokens import add_token


def _failures(reason: str) -> float:
    return REGISTRY.get_sample_value("effort_auth_failures_total", {"reason": reason}) or 0.0


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[Authenticator, dict[str, str]]:
    path = tmp_path / "tokens.json"
    made = {scope: add_token(path, f"client-{scope}", [scope]) for scope in ("score", "record", "admin")}
    return Authenticator(path, None, None, None), made


def test_every_effort_method_needs_its_scope(tokens: tuple[Authenticator, dict[str, str]]) -> None:
    authenticator, made = tokens
    assert set(REQUIRED_SCOPES.values()) == {"score", "record", "admin"}
    for method, scope in REQUIRED_SCOPES.items():
        principal = authorize(authenticator, method, [("authorization", f"Bearer {made[scope]}")])
        assert principal.name == f"client-{scope}"
        for other in {"score", "record", "admin"} - {scope}:
            before = _failures("scope_missing")
            with pytest.raises(_Refused) as refused:
                authorize(authenticator, method, [("authorization", f"Bearer {made[other]}")])
            assert (refused.value.code, refused.value.reason) == (code_pb2.PERMISSION_DENIED,
                                                                  "SCOPE_MISSING")
            assert made[other] not in str(refused.value)
            assert _failures("scope_missing") == before + 1


def test_a_missing_token_is_unauthenticated_and_counted(
        tokens: tuple[Authenticator, dict[str, str]]) -> None:
    authenticator, _ = tokens
    before = _failures("token_missing")
    with pytest.raises(_Refused) as refused:
        authorize(authenticator, "/effort.v1.ScoringService/Score", [("x-request-id", "r1")])
    assert (refused.value.code, refused.value.reason) == (code_pb2.UNAUTHENTICATED, "TOKEN_MISSING")
    assert _failures("token_missing") == before + 1


def test_reflection_takes_any_valid_token(tokens: tuple[Authenticator, dict[str, str]]) -> None:
    authenticator, made = tokens
    method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    assert authorize(authenticator, method, [("authorization", f"Bearer {made['record']}")])
    with pytest.raises(_Refused):
        authorize(authenticator, method, [("authorization", "Bearer eff_unknown")])
