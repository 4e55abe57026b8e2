"""Real TLS handshakes on loopback: TLS, mutual TLS, rotation without restart, refused settings."""

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import _async as health_aio  # what grpc_health.v1.health.aio names
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.channels import bearer_metadata, open_channel
from service.event_loop import run_on_loop
from service.settings import Settings
from service.tls import TlsConfigError, server_credentials, tls_enabled
from tests.helpers_tls import TlsPaths, write_certificates


def _settings(cert: Path | None, key: Path | None, client_ca: Path | None = None) -> Settings:
    return Settings(tls_cert_file=cert, tls_key_file=key, tls_client_ca_file=client_ca)


async def _start(credentials: grpc.ServerCredentials) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, port


@contextmanager
def _serving(settings: Settings) -> Iterator[int]:
    """A grpc.aio server with only the health service on the serving loop; yields its port."""
    credentials = server_credentials(settings)
    assert credentials is not None
    server, port = run_on_loop(_start(credentials))
    try:
        yield port
    finally:
        run_on_loop(server.stop(None))


def _check(port: int, host: str = "127.0.0.1", ca: Path | None = None, cert: Path | None = None,
           key: Path | None = None) -> grpc.StatusCode:
    """A health Check on a new channel: OK or the failure's status code."""
    with open_channel(f"{host}:{port}", ca=ca, cert=cert, key=key) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
def pki(tmp_path: Path) -> TlsPaths:
    return write_certificates(tmp_path / "pki")


@pytest.fixture
def other(tmp_path: Path) -> TlsPaths:
    """Certificates of another, untrusted CA."""
    return write_certificates(tmp_path / "other")


def test_tls_serves_clients_that_trust_its_ca_only(pki: TlsPaths, other: TlsPaths) -> None:
    settings = _settings(pki.server_cert, pki.server_key)
    assert tls_enabled(settings)
    with _serving(settings) as port:
        assert _check(port, ca=pki.ca) == grpc.StatusCode.OK
        assert _check(port, host="localhost", ca=pki.ca) == grpc.StatusCode.OK
        assert _check(port) == grpc.StatusCode.UNAVAILABLE  # plaintext
        assert _check(port, ca=other.ca) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate_from_the_client_ca(tmp_path: Path, pki: TlsPaths,
                                                                   other: TlsPaths) -> None:
    clients = write_certificates(tmp_path / "clients")
    with _serving(_settings(pki.server_cert, pki.server_key, clients.ca)) as port:
        assert _check(port, ca=pki.ca) == grpc.StatusCode.UNAVAILABLE
        assert _check(port, ca=pki.ca, cert=clients.client_cert,
                      key=clients.client_key) == grpc.StatusCode.OK
        assert _check(port, ca=pki.ca, cert=other.client_cert,
                      key=other.client_key) == grpc.StatusCode.UNAVAILABLE
        assert _check(port) == grpc.StatusCode.UNAVAILABLE


def _replace(source: Path, target: Path) -> None:
    """Writes `source`'s content to `target` atomically (a new file renamed into place)."""
    staged = target.with_name(f".{target.name}.new")
    shutil.copyfile(source, staged)
    os.replace(staged, target)


def test_a_rotated_certificate_serves_new_connections_without_restart(
        tmp_path: Path, pki: TlsPaths, caplog: pytest.LogCaptureFixture) -> None:
    served = tmp_path / "served"
    served.mkdir()
    cert, key = served / "cert.pem", served / "key.pem"
    shutil.copyfile(pki.server_cert, cert)
    shutil.copyfile(pki.server_key, key)
    rotated = write_certificates(tmp_path / "rotated")
    caplog.set_level(logging.INFO, logger="service.tls")
    with _serving(_settings(cert, key)) as port:
        assert _check(port, ca=pki.ca) == grpc.StatusCode.OK

        # Half-way through a rotation the new certificate does not match the old key: the old
        # pair stays in use, with one warning however many handshakes see it.
        _replace(rotated.server_cert, cert)
        for _ in range(3):
            assert _check(port, ca=pki.ca) == grpc.StatusCode.OK
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "does not match" in warnings[0].getMessage()
        assert "PRIVATE KEY" not in caplog.text

        _replace(rotated.server_key, key)
        assert _check(port, ca=rotated.ca) == grpc.StatusCode.OK
        assert _check(port, ca=pki.ca) == grpc.StatusCode.UNAVAILABLE
        assert _check(port, host="localhost", ca=rotated.ca) == grpc.StatusCode.OK

        # Rewritten in place (same inode) counts as a change too.
        shutil.copyfile(pki.server_cert, cert)
        shutil.copyfile(pki.server_key, key)
        assert _check(port, ca=pki.ca) == grpc.StatusCode.OK
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_mismatched_pair_is_refused_at_start_in_one_line(pki: TlsPaths, other: TlsPaths) -> None:
    with pytest.raises(TlsConfigError, match="does not match") as error:
        server_credentials(_settings(pki.server_cert, other.server_key))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("given", "missing"), [("cert", "KEY"), ("key", "CERT")])
def test_a_certificate_without_its_key_is_refused(pki: TlsPaths, given: str, missing: str) -> None:
    settings = (_settings(pki.server_cert, None) if given == "cert"
                else _settings(None, pki.server_key))
    assert tls_enabled(settings)
    with pytest.raises(TlsConfigError, match=f"without EFFORT_TLS_{missing}_FILE"):
        server_credentials(settings)


def test_unusable_files_are_refused_in_one_line(tmp_path: Path, pki: TlsPaths) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(serialization.load_pem_private_key(
        pki.server_key.read_bytes(), password=None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    cases = [
        (_settings(tmp_path / "absent.pem", pki.server_key), "cannot read EFFORT_TLS_CERT_FILE"),
        (_settings(not_pem, pki.server_key), "no readable PEM certificate"),
        (_settings(pki.server_cert, not_pem), "no readable PEM private key"),
        (_settings(pki.server_cert, pki.server_cert), "no readable PEM private key"),
        (_settings(pki.server_cert, encrypted), "is encrypted"),
        (_settings(pki.server_cert, pki.server_key, not_pem), "EFFORT_TLS_CLIENT_CA_FILE"),
        (_settings(None, None, pki.ca), "needs EFFORT_TLS_CERT_FILE"),
    ]
    for settings, message in cases:
        with pytest.raises(TlsConfigError, match=message) as error:
            server_credentials(settings)
        assert "\n" not in str(error.value)


def test_without_tls_files_there_are_no_credentials() -> None:
    settings = _settings(None, None)
    assert not tls_enabled(settings)
    assert server_credentials(settings) is None


def test_client_files_are_checked_before_any_call(tmp_path: Path, pki: TlsPaths,
                                                  other: TlsPaths) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    cases = [
        ({"ca": pki.ca, "cert": pki.client_cert}, "certificate file was given without its key"),
        ({"key": pki.client_key}, "key file was given without its certificate"),
        ({"ca": tmp_path / "absent.pem"}, "cannot read the CA bundle"),
        ({"ca": not_pem}, "no readable PEM certificate"),
        ({"cert": not_pem, "key": pki.client_key}, "no readable PEM certificate"),
        ({"cert": pki.client_cert, "key": not_pem}, "no readable PEM private key"),
        ({"cert": pki.client_cert, "key": other.client_key}, "does not match"),
    ]
    for files, message in cases:
        with pytest.raises(TlsConfigError, match=message) as error:
            open_channel("127.0.0.1:1", **files)
        assert "\n" not in str(error.value)


def test_bearer_metadata() -> None:
    assert bearer_metadata("s3cret") == (("authorization", "Bearer s3cret"),)
    assert bearer_metadata(None) == ()
