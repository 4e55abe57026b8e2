"""What `effort` says about settings: secrets masked, unknown EFFORT_* variables with the name
they likely misspell, and validation errors as one block naming every field."""

import json
import os
from pathlib import Path

import pydantic
import pytest
from pydantic_core import ValidationError

from service.cli import main
from service.routing import RoutingPolicy
from service.settings import Settings, setting_variables, variable_sources
from service.settings_report import (
    KNOWN_NON_SETTINGS,
    MASK,
    MAX_ERROR_LINES,
    describe_validation_error,
    is_secret,
    mask,
    mask_url,
    source_of,
    unknown_variables,
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No EFFORT_* variable set and a working directory without a .env file."""
    for name in list(os.environ):
        if name.upper().startswith("EFFORT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _settings_error() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Settings()
    return caught.value


@pytest.mark.parametrize("name", ["EFFORT_TOKEN", "EFFORT_REDIS_PASSWORD", "EFFORT_API_KEY",
                                  "EFFORT_CLIENT_SECRET", "effort_api_token", "EFFORT_PASSWORD"])
def test_secret_names_are_masked(name: str) -> None:
    assert is_secret(name)
    assert mask(name, "hunter2") == MASK


@pytest.mark.parametrize("name", ["EFFORT_TLS_KEY_FILE", "EFFORT_AUTH_TOKENS_FILE",
                                  "EFFORT_AUTH_JWKS_FILE", "EFFORT_GRPC_PORT", "EFFORT_KEYBOARD"])
def test_names_of_files_and_plain_settings_are_shown(name: str) -> None:
    assert not is_secret(name)
    assert mask(name, "/etc/effort/tls.key") == "/etc/effort/tls.key"


def test_no_setting_holds_a_raw_secret_today() -> None:
    # If one is added (EFFORT_REDIS_PASSWORD, EFFORT_API_KEY), it is masked by its name.
    assert [name for name in setting_variables().values() if is_secret(name)] == []
    assert "EFFORT_REDIS_URL" in setting_variables().values()


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
    ("rediss://default:secret@cache:6380/2", "rediss://default:***@cache:6380/2"),
    ("redis://:p@ss:w/rd@cache:6379/0", "redis://:***@cache:6379/0"),
    ("redis://cache:6379/0?password=secret&db=1", "redis://cache:6379/0?password=***&db=1"),
    ("redis://user@cache:6379/0", "redis://user@cache:6379/0"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("localhost:6379", "localhost:6379"),
    ("", ""),
])
def test_url_passwords_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert mask("EFFORT_REDIS_URL", url) == shown


def test_masking_reaches_into_mappings_and_lists() -> None:
    assert mask("x", None) is None and mask("EFFORT_TOKEN", "") == ""
    assert mask("EFFORT_GRPC_PORT", 50051) == 50051
    assert mask("values", {"redis_url": "redis://:pw@h:1/0", "api_key": "k", "port": 1}) == {
        "redis_url": "redis://:***@h:1/0", "api_key": MASK, "port": 1}
    assert mask("urls", ["redis://:pw@h:1/0"]) == ["redis://:***@h:1/0"]


def test_unknown_variables_name_the_likely_setting() -> None:
    environment = {"EFFORT_GRPC_PROT": "1", "EFFORT_GRPC_PORT": "1", "effort_log_level": "INFO",
                   "EFFORT_TOKEN": "t", "EFFORT_DEBUG": "1", "EFFORT_FAULT_REPORT": "r.json",
                   "EFFORT_ZZZ": "1", "PATH": "/bin", "effort_tokn": "x"}
    dotenv = {"EFFORT_LOG_LEVL": "DEBUG", "EFFORT_GRPC_PROT": "2"}
    unknown = unknown_variables({"environment": environment, ".env": dotenv},
                                setting_variables().values())
    assert [(u.name, u.source, u.suggestion) for u in unknown] == [
        ("EFFORT_GRPC_PROT", "environment", "EFFORT_GRPC_PORT"),
        ("EFFORT_ZZZ", "environment", None),
        ("effort_tokn", "environment", "EFFORT_TOKEN"),
        ("EFFORT_LOG_LEVL", ".env", "EFFORT_LOG_LEVEL")]
    assert [u.describe() for u in unknown] == [
        "EFFORT_GRPC_PROT (did you mean EFFORT_GRPC_PORT?)", "EFFORT_ZZZ",
        "effort_tokn (did you mean EFFORT_TOKEN?)",
        "EFFORT_LOG_LEVL in .env (did you mean EFFORT_LOG_LEVEL?)"]


def test_known_non_settings_are_not_settings() -> None:
    assert not set(KNOWN_NON_SETTINGS) & set(setting_variables().values())


def test_the_source_is_the_first_that_sets_a_variable() -> None:
    sources = {"environment": {"effort_grpc_port": "1"}, ".env": {"EFFORT_GRPC_PORT": "2",
                                                                   "EFFORT_LOG_LEVEL": "DEBUG"}}
    assert source_of("EFFORT_GRPC_PORT", sources) == "environment"
    assert source_of("EFFORT_LOG_LEVEL", sources) == ".env"
    assert source_of("EFFORT_WORKERS", sources) == "default"


def test_variable_sources_read_the_env_file(clean_environment: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(variable_sources()) == ["environment"]
    (clean_environment / ".env").write_text("EFFORT_GRPC_PORT=6000\nEFFORT_LOG_LEVL=debug\n")
    monkeypatch.setenv("EFFORT_LOG_LEVEL", "WARNING")
    sources = variable_sources()
    assert list(sources) == ["environment", ".env"]
    assert sources[".env"] == {"EFFORT_GRPC_PORT": "6000", "EFFORT_LOG_LEVL": "debug"}
    assert Settings().grpc_port == 6000 and source_of("EFFORT_GRPC_PORT", sources) == ".env"
    assert source_of("EFFORT_LOG_LEVEL", sources) == "environment"


def test_settings_errors_name_every_variable_and_its_value(
        clean_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFFORT_GRPC_PORT", "70000")
    monkeypatch.setenv("EFFORT_LOG_LEVEL", "loud")
    monkeypatch.setenv("effort_max_batch", "0")
    assert describe_validation_error(_settings_error()).splitlines() == [
        "invalid settings:",
        "  EFFORT_GRPC_PORT: Input should be less than or equal to 65535 (got '70000')",
        "  EFFORT_MAX_BATCH: Input should be greater than or equal to 1 (got '0')",
        "  EFFORT_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' (got 'LOUD')"]


def test_settings_errors_mask_secrets(clean_environment: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(redis_url=["redis://:hunter2@cache:6379/0"])
    text = describe_validation_error(caught.value)
    assert "hunter2" not in text
    assert "EFFORT_REDIS_URL: Input should be a valid string (got ['redis://:***@cache:6379/0'])" \
        in text
    error = ValidationError.from_exception_data("Settings", [
        {"type": "string_too_short", "loc": ("api_token",), "input": "hunter2",
         "ctx": {"min_length": 32}}])
    assert describe_validation_error(error).splitlines()[1] == (
        "  EFFORT_API_TOKEN: String should have at least 32 characters (got '***')")


def test_other_models_errors_name_their_paths(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"senior_share": 3, "rules": [{"code": "x", "op": "~"}]}))
    with pytest.raises(pydantic.ValidationError) as caught:
        RoutingPolicy.load(policy)
    assert describe_validation_error(caught.value).splitlines() == [
        "invalid routing policy:",
        "  senior_share: Input should be less than 1 (got 3)",
        "  rules[0].code: String should match pattern '^[A-Z][A-Z0-9_]*$' (got 'x')",
        "  rules[0].feature: Field required",
        "  rules[0].op: Input should be '==', '!=', '>=', '>', '<=' or '<' (got '~')",
        "  rules[0].value: Field required",
        "  rules[0].description: Field required"]
    policy.write_text("[1]")
    with pytest.raises(pydantic.ValidationError) as caught:
        RoutingPolicy.load(policy)
    assert describe_validation_error(caught.value).splitlines()[1].startswith(
        "  (top level): Input should be a valid dictionary")


def test_long_lists_of_errors_are_cut() -> None:
    errors = [{"type": "missing", "loc": (f"field_{i}",), "input": {}} for i in range(30)]
    lines = describe_validation_error(
        ValidationError.from_exception_data("Model", errors)).splitlines()  # type: ignore[arg-type]
    assert len(lines) == 1 + MAX_ERROR_LINES + 1 and lines[-1] == f"  ... and {30 - MAX_ERROR_LINES} more"


def test_effort_prints_the_block_and_exits_1(clean_environment: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EFFORT_GRPC_PORT", "70000")
    monkeypatch.setenv("EFFORT_LOG_LEVEL", "loud")
    assert main(["config"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "effort config: invalid settings:",
        "  EFFORT_GRPC_PORT: Input should be less than or equal to 65535 (got '70000')",
        "  EFFORT_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' (got 'LOUD')"]


def test_settings_error_stays_one_line(clean_environment: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EFFORT_REDIS_URL", "localhost:6379")
    assert main(["config"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "effort config: EFFORT_REDIS_URL must start with redis:// or rediss:// "
        "(e.g. redis://:password@host:6379/0)"]
