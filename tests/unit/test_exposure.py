"""Secure by default: which binds need TLS and authentication, and the one line a refusal prints."""

from pathlib import Path

import pytest

from service.exposure import InsecureExposure, ensure_safe_exposure, is_loopback
from service.settings import Settings


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.1.2.3", False),
    ("no-such-host.invalid", False)])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_default_bind_is_loopback_and_needs_nothing() -> None:
    settings = Settings()
    assert settings.grpc_host == "127.0.0.1"
    ensure_safe_exposure(settings)


def test_a_public_bind_needs_both_tls_and_authentication() -> None:
    cert, key, tokens = Path("s.pem"), Path("s.key"), Path("tokens.json")
    with pytest.raises(InsecureExposure) as neither:
        ensure_safe_exposure(Settings(grpc_host="0.0.0.0"))
    message = str(neither.value)
    assert "\n" not in message and "TLS" in message and "authentication" in message
    assert "EFFORT_ALLOW_INSECURE=true" in message
    with pytest.raises(InsecureExposure, match="without authentication"):
        ensure_safe_exposure(Settings(grpc_host="0.0.0.0", tls_cert_file=cert, tls_key_file=key))
    with pytest.raises(InsecureExposure, match=r"without TLS \(EFFORT_TLS_CERT_FILE"):
        ensure_safe_exposure(Settings(grpc_host="0.0.0.0", auth_tokens_file=tokens))
    ensure_safe_exposure(Settings(grpc_host="0.0.0.0", tls_cert_file=cert, tls_key_file=key,
                                  auth_tokens_file=tokens))
    ensure_safe_exposure(Settings(grpc_host="0.0.0.0", tls_cert_file=cert, tls_key_file=key,
                                  auth_jwks_file=Path("jwks.json")))
    ensure_safe_exposure(Settings(grpc_host="0.0.0.0", allow_insecure=True))
