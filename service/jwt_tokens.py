"""JSON Web Tokens of an identity provider, verified against a local JWKS file (PyJWT)."""

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from service.watched_file import WatchedFile

log = logging.getLogger(__name__)

# Asymmetric algorithms only: never HS* (a public key is no secret) nor `none`.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384")
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256")
# Clocks of the identity provider and this server may differ by this much.
LEEWAY_SECONDS = 30
VERIFIED_CACHE_SIZE = 4096  # distinct verified tokens remembered; cleared when full
REQUIRED_CLAIMS = ["exp", "iss", "aud"]
_NAME_CLAIMS = ("sub", "client_id", "azp")


class JwtRejected(Exception):
    """A token that does not verify. The message never quotes the token or any part of it."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.expired = expired


@dataclass(frozen=True)
class JwtIdentity:
    """Who a verified token speaks for, and what it allows."""

    name: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class _Key:
    key: Any  # a cryptography public key
    algorithms: tuple[str, ...]
    kid: str | None


def read_jwks(path: Path) -> list[_Key]:
    """The usable signing keys of a JWKS file: RSA or EC public keys for the algorithms allowed.

    OSError when it cannot be read; ValueError (naming the file) when it is not a JWKS, holds a
    private key, or holds no usable key. Keys for other uses or algorithms are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise OSError(error.errno, f"cannot read JWKS file ({error.strerror})", str(path)) from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"JWKS file {path} is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f'JWKS file {path} is not an object with a "keys" list')
    keys = []
    for raw in document["keys"]:
        if (not isinstance(raw, dict) or raw.get("kty") not in ("RSA", "EC")
                or raw.get("use", "sig") != "sig" or raw.get("alg", "RS256") not in ALGORITHMS):
            continue  # not a signing key of an allowed algorithm (an `oct` key is never one)
        if "d" in raw:
            raise ValueError(f"JWKS file {path} holds a private key; give it the public keys only")
        try:
            jwk = jwt.PyJWK(raw)
        except jwt.exceptions.MissingCryptographyError:
            raise
        except (jwt.PyJWTError, ValueError, TypeError):
            continue  # a key PyJWT cannot use, skipped as jwt.PyJWKSet does
        if jwk.algorithm_name not in ALGORITHMS:
            continue  # an EC curve of no allowed algorithm (P-521, secp256k1)
        # PyJWK takes RS256 for an RSA key naming no `alg`; such a key verifies them all.
        unnamed_rsa = jwk.key_type == "RSA" and "alg" not in raw
        algorithms = _RSA_ALGORITHMS if unnamed_rsa else (jwk.algorithm_name,)
        keys.append(_Key(jwk.key, algorithms, jwk.key_id))
    if not keys:
        raise ValueError(f"JWKS file {path} holds no usable signing key "
                         f"(RSA or EC public keys for {', '.join(ALGORITHMS)})")
    return keys


class JwtVerifier:
    """Verifies JSON Web Tokens: signature by a key of the JWKS file (by `kid`, or its only key),
    an allowed asymmetric algorithm, `exp`, `iss` and `aud`.

    The JWKS file must be readable and usable at start (OSError or ValueError naming it); it is
    re-read when it changes, and a change that cannot be read keeps the keys read before, with
    one WARNING line per change."""

    def __init__(self, jwks_file: Path, issuer: str, audience: str) -> None:
        self.jwks_file = jwks_file
        self.issuer = issuer
        self.audience = audience
        self._keys = WatchedFile(jwks_file, read_jwks, "JWKS file", len, "keys", log)
        self._verified_with: list[_Key] | None = None  # the keys _verified was filled with
        # Tokens already verified against the current keys, with their expiry: a client sends
        # the same token until it expires, and verifying a signature costs about 100 us.
        self._verified: dict[str, tuple[JwtIdentity, float]] = {}

    def verify(self, token: str) -> JwtIdentity:
        """The identity a valid token carries; JwtRejected (expired or not) otherwise.

        Scopes come from the `scope` claim (space-separated, or a list; `scp` when it is absent),
        the name from `sub` (else `client_id`, else `azp`)."""
        keys = self._keys.current()
        if keys is not self._verified_with:  # a key may have been withdrawn
            self._verified, self._verified_with = {}, keys
        known = self._verified.get(token)
        if known is not None:
            if time.time() > known[1] + LEEWAY_SECONDS:
                raise JwtRejected("token has expired", expired=True)
            return known[0]
        key = _key_for(token, keys)
        try:
            claims = jwt.decode(token, key.key, algorithms=list(key.algorithms),
                                audience=self.audience, issuer=self.issuer,
                                leeway=LEEWAY_SECONDS, options={"require": REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise JwtRejected("token has expired", expired=True) from None
        except jwt.PyJWTError as error:
            raise JwtRejected(_reason(error)) from None
        identity = JwtIdentity(_name(claims), _scopes(claims))
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (identity, float(claims["exp"]))
        return identity


def _key_for(token: str, keys: list[_Key]) -> _Key:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise JwtRejected("token is not a well-formed JSON Web Token") from None
    if kid is None:
        if len(keys) == 1:
            return keys[0]
        raise JwtRejected("token names no key (kid) and the JWKS file holds several")
    for key in keys:
        if key.kid == kid:
            return key
    raise JwtRejected("token is signed by a key the JWKS file does not hold")


def _reason(error: jwt.PyJWTError) -> str:
    """A message for a rejected token, written here so that none of the token gets into it."""
    if isinstance(error, jwt.InvalidAudienceError):
        return "token is not for this audience"
    if isinstance(error, jwt.InvalidIssuerError):
        return "token is not from the expected issuer"
    if isinstance(error, jwt.MissingRequiredClaimError):
        claim = error.claim if error.claim in REQUIRED_CLAIMS else "a required"
        return f"token lacks the {claim} claim"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return "token algorithm is not allowed"
    if isinstance(error, jwt.InvalidSignatureError):
        return "token signature does not verify"
    if isinstance(error, jwt.ImmatureSignatureError):
        return "token is not valid yet"
    if isinstance(error, jwt.DecodeError):
        return "token is not a well-formed JSON Web Token"
    return "token is not valid"


def _name(claims: dict[str, Any]) -> str:
    for claim in _NAME_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value
    raise JwtRejected(f"token names no client ({', '.join(_NAME_CLAIMS)})")


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    value = claims.get("scope", claims.get("scp"))
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(scope, str) for scope in value):
        return frozenset(value)
    raise JwtRejected("token scope claim is neither a string nor a list of strings")
