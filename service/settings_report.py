"""What `effort` says about its settings: secrets masked, unknown EFFORT_* variables with a likely
meant name, and every error of a pydantic ValidationError in one readable block.

Only the standard library and pydantic_core: `effort` imports this at once, and `effort --version`
stays fast. The settings themselves (service/settings.py) pass their names in.
"""

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic_core import ValidationError

ENV_PREFIX = "EFFORT_"
MASK = "***"

# EFFORT_* variables that are not settings but are read by name elsewhere: never reported unknown.
KNOWN_NON_SETTINGS: Mapping[str, str] = {
    "EFFORT_DEBUG": "`effort` prints full tracebacks",
    "EFFORT_TOKEN": "bearer token of `effort score` and `effort ingest --address`",
    "EFFORT_FAULT_REPORT": "where the fault-injection tests write their tally as JSON",
}
# Variables whose whole value is a secret; other names holding a secret word are masked too
# (_looks_secret), and so is the password of any URL value.
SECRET_VARIABLES = frozenset({"EFFORT_TOKEN"})
_SECRET_WORDS = frozenset({"TOKEN", "TOKENS", "PASSWORD", "PASSWD", "PASS", "SECRET", "SECRETS",
                           "KEY", "APIKEY", "CREDENTIAL", "CREDENTIALS"})
# ...unless the name says it holds where the secret is, not the secret (EFFORT_TLS_KEY_FILE).
_LOCATION_SUFFIXES = ("FILE", "DIR", "PATH", "KEYFILE", "CERTFILE")
# The pydantic models whose fields are EFFORT_<FIELD> variables.
SETTINGS_MODELS = frozenset({"Settings"})
MAX_ERROR_LINES = 20
_MAX_VALUE_CHARS = 80
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)$", re.DOTALL)
_QUERY_PARAMETER = re.compile(r"(?P<name>[^?&=#]+)=(?P<value>[^&#]*)")


def _looks_secret(name: str) -> bool:
    words = [word for word in re.split(r"[_\-.]", name.upper()) if word]
    return (bool(words) and words[-1] not in _LOCATION_SUFFIXES
            and any(word in _SECRET_WORDS for word in words))


def is_secret(name: str) -> bool:
    """Whether the variable's whole value is a secret (EFFORT_TOKEN, any *_PASSWORD, *_API_KEY;
    not EFFORT_TLS_KEY_FILE or EFFORT_AUTH_TOKENS_FILE, which name files)."""
    return name.upper() in SECRET_VARIABLES or _looks_secret(name)


def mask_url(text: str) -> str:
    """A URL with its password, and query parameters such as ?password=, replaced by ***:
    redis://:secret@host:6379/0 -> redis://:***@host:6379/0. Other text is returned as it is."""
    match = _URL.match(text)
    if match is None:
        return text
    scheme, rest = match["scheme"], match["rest"]
    if "@" in rest:
        # The last @ ends the user information, even when the password holds @ unescaped.
        userinfo, rest = rest.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        scheme += f"{user}:{MASK}@" if colon else f"{userinfo}@"
    path, question, query = rest.partition("?")
    if question:
        query = _QUERY_PARAMETER.sub(
            lambda m: f"{m['name']}={MASK}" if _looks_secret(m["name"]) else m[0], query)
    return f"{scheme}{path}{question}{query}"


def mask(name: str, value: Any) -> Any:
    """The value of variable `name` fit to print: *** for a secret, a URL without its password;
    in a mapping or a list, each item so (by its key)."""
    if value is None or value == "":
        return value
    if is_secret(name):
        return MASK
    if isinstance(value, Mapping):
        return {key: mask(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask(name, item) for item in value]
    return mask_url(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Unknown:
    """An EFFORT_* variable that no setting reads, and where it was set."""

    name: str
    source: str  # "environment" or the env file's name
    suggestion: str | None  # the known name it most likely misspells

    def describe(self) -> str:
        """EFFORT_GRPC_PROT (did you mean EFFORT_GRPC_PORT?)"""
        where = "" if self.source == "environment" else f" in {self.source}"
        hint = f" (did you mean {self.suggestion}?)" if self.suggestion else ""
        return f"{self.name}{where}{hint}"


def unknown_variables(sources: Mapping[str, Iterable[str]], known: Iterable[str]) -> list[Unknown]:
    """EFFORT_* names in `sources` (source name -> variable names, e.g. {"environment":
    os.environ}) that are neither in `known` nor in KNOWN_NON_SETTINGS, each with the known name
    it most resembles. Names compare without case, as pydantic-settings reads them."""
    candidates = sorted({name.upper() for name in known} | set(KNOWN_NON_SETTINGS))
    stems = {name.removeprefix(ENV_PREFIX): name for name in candidates}
    found: dict[str, Unknown] = {}
    for source, names in sources.items():
        for name in sorted(names):
            upper = name.upper()
            if not upper.startswith(ENV_PREFIX) or upper in candidates or name in found:
                continue
            close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), stems, n=1,
                                              cutoff=0.7)
            found[name] = Unknown(name, source, stems[close[0]] if close else None)
    return list(found.values())


def source_of(name: str, sources: Mapping[str, Iterable[str]]) -> str:
    """The first of `sources` (source name -> variable names, the winning one first) that sets
    variable `name`, compared without case; "default" when none does."""
    upper = name.upper()
    for source, names in sources.items():
        if any(candidate.upper() == upper for candidate in names):
            return source
    return "default"


def describe_validation_error(error: ValidationError) -> str:
    """Every error of `error` on its own line, under one heading; for the settings, each named by
    its environment variable and its value masked:

        invalid settings:
          EFFORT_GRPC_PORT: Input should be less than or equal to 65535 (got '70000')
    """
    settings = error.title in SETTINGS_MODELS
    heading = "settings" if settings else _words(error.title)
    lines = [f"invalid {heading}:"]
    details = error.errors(include_url=False)
    for detail in details[:MAX_ERROR_LINES]:
        location = tuple(detail["loc"])
        if settings and location:
            where = f"{ENV_PREFIX}{str(location[0]).upper()}"
            value = mask(where, detail.get("input"))
        else:
            where = _path(location)
            value = mask(str(location[-1]) if location else "", detail.get("input"))
        given = "" if detail["type"] == "missing" else f" (got {_short(value)})"
        lines.append(f"  {where}: {detail['msg']}{given}")
    if len(details) > MAX_ERROR_LINES:
        lines.append(f"  ... and {len(details) - MAX_ERROR_LINES} more")
    return "\n".join(lines)


def _words(title: str) -> str:
    """RoutingPolicy -> routing policy."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", title).lower()


def _path(location: tuple[int | str, ...]) -> str:
    """('rules', 0, 'op') -> rules[0].op; () -> (top level)."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(top level)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else f"{text[:_MAX_VALUE_CHARS - 3]}..."
