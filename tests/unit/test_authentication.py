"""The authenticator: `Bearer <token>` from the token file or a JWT, and failures that say why."""

import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.authentication import (
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_MISSING,
    Authenticator,
    AuthFailure,
    Principal,
)
from service.settings import Settings
from service.tokens import add_token, revoke_token
from tests.unit.test_jwt_tokens import (
    AUDIENCE,
    ISSUER,
    claims,
    public_jwk,
    rsa_key,
    sign,
    unsigned,
    write_jwks,
)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    return tmp_path / "tokens.json"


@pytest.fixture
def auth(tmp_path: Path, tokens_file: Path, key: rsa.RSAPrivateKey) -> Authenticator:
    add_token(tokens_file, "placeholder", ["score"])
    jwks = write_jwks(tmp_path / "jwks.json", public_jwk(key, "k1"))
    return Authenticator(tokens_file, jwks, ISSUER, AUDIENCE)


def settings(tokens_file: Path | None = None, jwks_file: Path | None = None) -> Settings:
    """Settings with these files and no issuer or audience, whatever the environment says."""
    return Settings(auth_tokens_file=tokens_file, auth_jwks_file=jwks_file, auth_jwt_issuer=None,
                    auth_jwt_audience=None)


def failure(auth: Authenticator, authorization: str | None) -> AuthFailure:
    """The AuthFailure of a header, checked not to quote the token."""
    with pytest.raises(AuthFailure) as caught:
        auth.authenticate(authorization)
    for token in (authorization or "").split()[1:]:
        for text in (str(caught.value), caught.value.message):
            assert token not in text
            assert all(part not in text for part in token.split(".") if len(part) >= 8)
    return caught.value


def test_a_file_token_authenticates_until_revoked(auth: Authenticator, tokens_file: Path) -> None:
    token = add_token(tokens_file, "crm", ["score", "record"])
    assert auth.authenticate(f"Bearer {token}") == Principal("crm", frozenset({"score", "record"}))
    assert auth.authenticate(f"bearer {token}").name == "crm"
    assert auth.authenticate(f"BEARER  {token} ").name == "crm"
    revoke_token(tokens_file, "crm")
    error = failure(auth, f"Bearer {token}")
    assert error.reason == TOKEN_INVALID and "not known" in error.message


def test_missing_and_malformed_headers(auth: Authenticator) -> None:
    for header in (None, "", "   "):
        assert failure(auth, header).reason == TOKEN_MISSING
    for header in ("Bearer", "Basic dXNlcjpwYXNz", "eff_abcdefghijklmnop", "Bearer eff_first eff_second"):
        error = failure(auth, header)
        assert error.reason == TOKEN_INVALID and "Bearer <token>" in error.message


def test_an_unknown_token_is_invalid(auth: Authenticator) -> None:
    error = failure(auth, "Bearer eff_notarealtokenatallnotarealtoken")
    assert error.reason == TOKEN_INVALID


def test_a_jwt_gives_its_subject_and_scopes(auth: Authenticator, key: rsa.RSAPrivateKey) -> None:
    principal = auth.authenticate(f"Bearer {sign(key, claims(scope='score admin'))}")
    assert principal == Principal("crm-batch", frozenset({"score", "admin"}))


@pytest.mark.parametrize(("changes", "reason", "message"), [
    ({"exp": int(time.time()) - 3600}, TOKEN_EXPIRED, "expired"),
    ({"aud": "other"}, TOKEN_INVALID, "not for this audience"),
    ({"iss": "https://other.example.com/"}, TOKEN_INVALID, "not from the expected issuer"),
])
def test_jwt_failures_say_why(auth: Authenticator, key: rsa.RSAPrivateKey,
                              changes: dict[str, object], reason: str, message: str) -> None:
    error = failure(auth, f"Bearer {sign(key, claims(**changes))}")
    assert error.reason == reason and message in error.message


def test_algorithm_confusion_and_none_are_refused(auth: Authenticator,
                                                  key: rsa.RSAPrivateKey) -> None:
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    confused = unsigned({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims(), key=pem)
    nothing = unsigned({"alg": "none", "typ": "JWT"}, claims())
    for token in (confused, nothing):
        assert failure(auth, f"Bearer {token}").reason == TOKEN_INVALID


def test_a_bad_signature_is_invalid(auth: Authenticator) -> None:
    error = failure(auth, f"Bearer {sign(rsa_key(), claims())}")
    assert error.reason == TOKEN_INVALID and "signature" in error.message


def test_without_jwks_a_dotted_token_goes_to_the_token_file(tokens_file: Path,
                                                             key: rsa.RSAPrivateKey) -> None:
    add_token(tokens_file, "crm", ["score"])
    auth = Authenticator(tokens_file, None, None, None)
    assert auth.enabled
    assert failure(auth, f"Bearer {sign(key, claims())}").reason == TOKEN_INVALID


def test_jwks_alone(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    auth = Authenticator(None, write_jwks(tmp_path / "jwks.json", public_jwk(key, "k1")), ISSUER,
                         AUDIENCE)
    assert auth.enabled
    assert auth.authenticate(f"Bearer {sign(key, claims())}").name == "crm-batch"
    assert failure(auth, "Bearer eff_somethingsomethingsomething").reason == TOKEN_INVALID


def test_jwks_needs_issuer_and_audience(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    jwks = write_jwks(tmp_path / "jwks.json", public_jwk(key, "k1"))
    with pytest.raises(ValueError, match="EFFORT_AUTH_JWT_AUDIENCE is not") as error:
        Authenticator(None, jwks, ISSUER, None)
    assert len(str(error.value).splitlines()) == 1
    with pytest.raises(ValueError, match="EFFORT_AUTH_JWT_ISSUER and EFFORT_AUTH_JWT_AUDIENCE"):
        Authenticator.from_settings(settings(jwks_file=jwks))


def test_from_settings(tokens_file: Path) -> None:
    assert not Authenticator.from_settings(settings()).enabled
    token = add_token(tokens_file, "crm", ["admin"])
    auth = Authenticator.from_settings(settings(tokens_file=tokens_file))
    assert auth.enabled and auth.authenticate(f"Bearer {token}").scopes == {"admin"}


def test_a_missing_tokens_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="token file"):
        Authenticator(tmp_path / "missing.json", None, None, None)


def test_unknown_reasons_are_refused() -> None:
    with pytest.raises(ValueError):
        AuthFailure("NOPE", "message")
