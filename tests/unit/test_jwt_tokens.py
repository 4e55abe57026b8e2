"""JSON Web Tokens against a local JWKS file: real keys, real signatures, only asymmetric algorithms."""

import base64
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.jwt_tokens import LEEWAY_SECONDS, JwtRejected, JwtVerifier

ISSUER = "https://idp.example.com/"
AUDIENCE = "effort"


def rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str | None,
               **extra: str) -> dict[str, Any]:
    """The public half of a key as a JWK."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    return {**jwk, **extra}


def write_jwks(path: Path, *jwks: dict[str, Any]) -> Path:
    """A JWKS file holding these keys."""
    path.write_text(json.dumps({"keys": list(jwks)}))
    return path


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for ISSUER and AUDIENCE, with changes (None removes a claim)."""
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "crm-batch", "iat": now,
                            "exp": now + 600, "scope": "score record"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Any, payload: dict[str, Any], algorithm: str = "RS256", kid: str | None = "k1") -> str:
    """A real JWT signed by PyJWT."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def unsigned(header: dict[str, Any], payload: dict[str, Any], key: bytes | None = None) -> str:
    """A JWT built by hand: HS256 with `key` as the HMAC secret, or no signature at all."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(payload).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def verifier(tmp_path: Path, key: rsa.RSAPrivateKey) -> JwtVerifier:
    return JwtVerifier(write_jwks(tmp_path / "jwks.json", public_jwk(key, "k1")), ISSUER, AUDIENCE)


def test_a_valid_token_gives_its_subject_and_scopes(verifier: JwtVerifier,
                                                    key: rsa.RSAPrivateKey) -> None:
    identity = verifier.verify(sign(key, claims()))
    assert identity.name == "crm-batch" and identity.scopes == {"score", "record"}


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512", "PS256"])
def test_an_rsa_key_naming_no_alg_verifies_each_rsa_algorithm(
        verifier: JwtVerifier, key: rsa.RSAPrivateKey, algorithm: str) -> None:
    assert verifier.verify(sign(key, claims(), algorithm)).name == "crm-batch"


def test_a_key_naming_its_alg_verifies_only_that(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    jwks = write_jwks(tmp_path / "jwks.json", public_jwk(key, "k1", alg="RS256"))
    verifier = JwtVerifier(jwks, ISSUER, AUDIENCE)
    assert verifier.verify(sign(key, claims(), "RS256")).name == "crm-batch"
    with pytest.raises(JwtRejected, match="algorithm is not allowed"):
        verifier.verify(sign(key, claims(), "PS256"))


def test_ec_keys_and_key_choice_by_kid(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    p256, p384 = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    jwks = write_jwks(tmp_path / "jwks.json", public_jwk(key, "k1"), public_jwk(p256, "e256"),
                      public_jwk(p384, "e384"))
    verifier = JwtVerifier(jwks, ISSUER, AUDIENCE)
    assert verifier.verify(sign(p256, claims(), "ES256", "e256")).name == "crm-batch"
    assert verifier.verify(sign(p384, claims(), "ES384", "e384")).name == "crm-batch"
    with pytest.raises(JwtRejected, match="algorithm is not allowed"):
        verifier.verify(sign(p256, claims(), "ES256", "k1"))  # an EC signature for the RSA key
    with pytest.raises(JwtRejected, match="signature does not verify"):
        verifier.verify(sign(ec.generate_private_key(ec.SECP256R1()), claims(), "ES256", "e256"))
    with pytest.raises(JwtRejected, match="does not hold"):
        verifier.verify(sign(p256, claims(), "ES256", "other"))
    with pytest.raises(JwtRejected, match="names no key"):
        verifier.verify(sign(p256, claims(), "ES256", kid=None))


def test_the_only_key_serves_a_token_without_kid(verifier: JwtVerifier,
                                                 key: rsa.RSAPrivateKey) -> None:
    assert verifier.verify(sign(key, claims(), kid=None)).name == "crm-batch"


def test_scope_as_a_list_and_name_fallbacks(verifier: JwtVerifier, key: rsa.RSAPrivateKey) -> None:
    identity = verifier.verify(sign(key, claims(sub=None, client_id="svc", scope=["admin"])))
    assert identity == type(identity)("svc", frozenset({"admin"}))
    assert verifier.verify(sign(key, claims(sub=None, azp="app", scope=None))).name == "app"
    assert verifier.verify(sign(key, claims(scope=None))).scopes == frozenset()
    with pytest.raises(JwtRejected, match="names no client"):
        verifier.verify(sign(key, claims(sub=None)))
    with pytest.raises(JwtRejected, match="scope claim"):
        verifier.verify(sign(key, claims(scope=7)))


@pytest.mark.parametrize(("changes", "message"), [
    ({"aud": "someone-else"}, "not for this audience"),
    ({"iss": "https://evil.example.com/"}, "not from the expected issuer"),
    ({"exp": None}, "lacks the exp claim"),
    ({"aud": None}, "lacks the aud claim"),
    ({"iss": None}, "lacks the iss claim"),
    ({"nbf": int(time.time()) + 3600}, "not valid yet"),
])
def test_claims_are_checked(verifier: JwtVerifier, key: rsa.RSAPrivateKey,
                            changes: dict[str, Any], message: str) -> None:
    with pytest.raises(JwtRejected, match=message) as error:
        verifier.verify(sign(key, claims(**changes)))
    assert not error.value.expired


def test_an_expired_token_says_so(verifier: JwtVerifier, key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(JwtRejected, match="expired") as error:
        verifier.verify(sign(key, claims(exp=int(time.time()) - 3600)))
    assert error.value.expired


def test_another_key_does_not_verify(verifier: JwtVerifier) -> None:
    with pytest.raises(JwtRejected, match="signature does not verify"):
        verifier.verify(sign(rsa_key(), claims()))


def test_hs256_signed_with_the_public_key_is_refused(verifier: JwtVerifier,
                                                     key: rsa.RSAPrivateKey) -> None:
    for public in (key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo),
                   json.dumps(public_jwk(key, "k1")).encode()):
        token = unsigned({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims(), key=public)
        with pytest.raises(JwtRejected, match="algorithm is not allowed"):
            verifier.verify(token)


def test_alg_none_is_refused(verifier: JwtVerifier) -> None:
    for alg in ("none", "None", "NONE"):
        with pytest.raises(JwtRejected, match="algorithm is not allowed"):
            verifier.verify(unsigned({"alg": alg, "typ": "JWT", "kid": "k1"}, claims()))


def test_garbage_is_not_a_token(verifier: JwtVerifier) -> None:
    for token in ("a.b.c", "..", "eyJhbGciOiJSUzI1NiJ9.e30.!!!!"):
        with pytest.raises(JwtRejected, match="well-formed") as error:
            verifier.verify(token)
        assert token not in str(error.value)


def test_symmetric_and_private_keys_are_not_loaded(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    secret = {"kty": "oct", "k": base64.urlsafe_b64encode(b"s" * 32).decode(), "kid": "k1"}
    with pytest.raises(ValueError, match="no usable signing key"):
        JwtVerifier(write_jwks(tmp_path / "a.json", secret), ISSUER, AUDIENCE)
    private = jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True)
    with pytest.raises(ValueError, match="private key"):
        JwtVerifier(write_jwks(tmp_path / "b.json", private), ISSUER, AUDIENCE)
    with pytest.raises(FileNotFoundError, match="JWKS file"):
        JwtVerifier(tmp_path / "missing.json", ISSUER, AUDIENCE)


def test_a_changed_jwks_file_is_picked_up(tmp_path: Path, key: rsa.RSAPrivateKey,
                                          caplog: pytest.LogCaptureFixture) -> None:
    path = write_jwks(tmp_path / "jwks.json", public_jwk(key, "k1"))
    verifier = JwtVerifier(path, ISSUER, AUDIENCE)
    rotated = rsa_key()
    with pytest.raises(JwtRejected):
        verifier.verify(sign(rotated, claims(), kid="k2"))
    write_jwks(tmp_path / "new.json", public_jwk(key, "k1"), public_jwk(rotated, "k2"))
    (tmp_path / "new.json").replace(path)
    assert verifier.verify(sign(rotated, claims(), kid="k2")).name == "crm-batch"
    path.write_text("{")
    with caplog.at_level(logging.WARNING, logger="service.jwt_tokens"):
        assert verifier.verify(sign(rotated, claims(), kid="k2")).name == "crm-batch"
        assert verifier.verify(sign(key, claims(), kid="k1")).name == "crm-batch"
    assert len(caplog.records) == 1 and "keeping the 2 keys" in caplog.records[0].getMessage()


def test_a_verified_token_is_remembered_until_it_expires(
        verifier: JwtVerifier, key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch) -> None:
    token = sign(key, claims(exp=int(time.time()) + 60))
    assert verifier.verify(token).name == "crm-batch"
    later = time.time() + 60 + LEEWAY_SECONDS + 1
    monkeypatch.setattr("service.jwt_tokens.time.time", lambda: later)
    with pytest.raises(JwtRejected) as expired:
        verifier.verify(token)
    assert expired.value.expired


def test_a_withdrawn_key_ends_the_tokens_it_signed(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    path = write_jwks(tmp_path / "jwks.json", public_jwk(key, "k1"))
    verifier = JwtVerifier(path, ISSUER, AUDIENCE)
    token = sign(key, claims())
    assert verifier.verify(token).name == "crm-batch"
    write_jwks(tmp_path / "new.json", public_jwk(rsa_key(), "k2"))
    (tmp_path / "new.json").replace(path)
    with pytest.raises(JwtRejected):
        verifier.verify(token)
