"""Who is calling: a bearer token from the token file or a JSON Web Token, as a Principal."""

from dataclasses import dataclass
from pathlib import Path

from service.jwt_tokens import JwtRejected, JwtVerifier
from service.settings import Settings
from service.tokens import TokenFile

TOKEN_MISSING = "TOKEN_MISSING"
TOKEN_INVALID = "TOKEN_INVALID"
TOKEN_EXPIRED = "TOKEN_EXPIRED"
REASONS = (TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED)
_MALFORMED = "the authorization header must be 'Bearer <token>'"


@dataclass(frozen=True)
class Principal:
    """An authenticated client: its name (token name or JWT subject) and its scopes."""

    name: str
    scopes: frozenset[str]


class AuthFailure(Exception):
    """A call that is not authenticated. `reason` is TOKEN_MISSING, TOKEN_INVALID or
    TOKEN_EXPIRED; the message says why and never contains the token or any part of it."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown authentication failure reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message


class Authenticator:
    """Turns a call's `authorization` metadata into a Principal, from the token file
    (EFFORT_AUTH_TOKENS_FILE), a JWKS file (EFFORT_AUTH_JWKS_FILE), or both.

    Both files are read at construction (OSError or ValueError naming the file when one cannot
    be used) and re-read when they change. A JWKS file without an issuer and an audience is a
    ValueError."""

    def __init__(self, tokens_file: Path | None, jwks_file: Path | None, issuer: str | None,
                 audience: str | None) -> None:
        self.tokens: TokenFile | None = None
        self.jwt: JwtVerifier | None = None
        if jwks_file is not None:
            if not issuer or not audience:
                lacking = " and ".join(name for name, value in (("EFFORT_AUTH_JWT_ISSUER", issuer),
                                                               ("EFFORT_AUTH_JWT_AUDIENCE", audience))
                                       if not value)
                raise ValueError(f"EFFORT_AUTH_JWKS_FILE is set but {lacking} is not: JSON Web "
                                 "Tokens are accepted only for a known issuer and audience")
            self.jwt = JwtVerifier(jwks_file, issuer, audience)
        if tokens_file is not None:
            self.tokens = TokenFile(tokens_file)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Authenticator":
        """The authenticator EFFORT_AUTH_* settings describe (enabled or not)."""
        return cls(settings.auth_tokens_file, settings.auth_jwks_file, settings.auth_jwt_issuer,
                   settings.auth_jwt_audience)

    @property
    def enabled(self) -> bool:
        """True when a token file or a JWKS file is configured: calls must then authenticate."""
        return self.tokens is not None or self.jwt is not None

    def authenticate(self, authorization: str | None) -> Principal:
        """The Principal of the raw `authorization` metadata value, `Bearer <token>` (the scheme
        in any case); AuthFailure otherwise.

        A token of three dot-separated parts is a JSON Web Token when a JWKS file is configured;
        any other token is looked up in the token file."""
        token = _bearer_token(authorization)
        if self.jwt is not None and token.count(".") == 2:
            try:
                identity = self.jwt.verify(token)
            except JwtRejected as error:
                raise AuthFailure(TOKEN_EXPIRED if error.expired else TOKEN_INVALID,
                                  error.message) from None
            return Principal(identity.name, identity.scopes)
        entry = self.tokens.lookup(token) if self.tokens is not None else None
        if entry is None:
            raise AuthFailure(TOKEN_INVALID, "token is not known (never issued, or revoked)")
        return Principal(entry.name, frozenset(entry.scopes))


def _bearer_token(authorization: str | None) -> str:
    """The token of `Bearer <token>`; AuthFailure when there is none or the header is malformed."""
    if authorization is None or not authorization.strip():
        raise AuthFailure(TOKEN_MISSING, "the call carries no authorization header "
                          "('Bearer <token>')")
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise AuthFailure(TOKEN_INVALID, _MALFORMED)
    return parts[1]
