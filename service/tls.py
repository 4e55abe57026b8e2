"""Server TLS from the EFFORT_TLS_* files, re-read when they change (rotation without restart)."""

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from service.settings import Settings

log = logging.getLogger(__name__)

# (mtime_ns, size, inode) of each file, None when it cannot be read; os.stat follows symbolic
# links, so a swapped link (Kubernetes secret volumes) counts as a change too.
Stamp = tuple[tuple[int, int, int] | None, ...]
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class TlsConfigError(ValueError):
    """The TLS settings or files cannot be used; the message is one readable line."""


@dataclass(frozen=True)
class TlsFiles:
    """The server's certificate chain and key, and the CA its clients' certificates need."""

    cert: Path
    key: Path
    client_ca: Path | None

    def paths(self) -> tuple[Path, ...]:
        return (self.cert, self.key) if self.client_ca is None else (
            self.cert, self.key, self.client_ca)


def tls_enabled(settings: Settings) -> bool:
    """True when any EFFORT_TLS_* file is set: the server then serves TLS only, or refuses to
    start when the setting is incomplete (server_credentials raises)."""
    return any(path is not None for path in (settings.tls_cert_file, settings.tls_key_file,
                                             settings.tls_client_ca_file))


def tls_files(settings: Settings) -> TlsFiles | None:
    """The TLS files the settings name; None without any; TlsConfigError when incomplete."""
    cert, key, client_ca = settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    if cert is None and key is None:
        if client_ca is not None:
            raise TlsConfigError("EFFORT_TLS_CLIENT_CA_FILE needs EFFORT_TLS_CERT_FILE and "
                                 "EFFORT_TLS_KEY_FILE (the server's own certificate and key)")
        return None
    if cert is None or key is None:
        given, missing = ("CERT", "KEY") if key is None else ("KEY", "CERT")
        raise TlsConfigError(f"EFFORT_TLS_{given}_FILE is set without EFFORT_TLS_{missing}_FILE; "
                             "TLS needs both the certificate chain and its private key")
    return TlsFiles(cert, key, client_ca)


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials for add_secure_port, None when no TLS file is set.

    The files are checked now (TlsConfigError, one line); afterwards gRPC core asks for the
    configuration on each new handshake and gets the files re-read when they changed, so a
    rotated certificate serves new connections without a restart. Verified with grpc.aio
    servers in grpcio 1.85.1 (tests/integration/test_tls.py): core calls the fetcher from its own
    threads, taking the GIL. With EFFORT_TLS_CLIENT_CA_FILE clients must present a certificate
    that CA signed (mutual TLS)."""
    files = tls_files(settings)
    if files is None:
        return None
    fetcher = _CertificateFetcher(files)
    # grpc-stubs declare the fetcher's result non-optional; None is gRPC's "unchanged".
    return grpc.dynamic_ssl_server_credentials(
        fetcher.initial, cast(Callable[[], grpc.ServerCertificateConfiguration], fetcher),
        require_client_authentication=files.client_ca is not None)


class _CertificateFetcher:
    """gRPC's certificate configuration fetcher: a new configuration when the files changed and
    hold a usable pair, else None (keep the one in use)."""

    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._stamp = files_stamp(files)  # before reading: a change while reading is seen next time
        self.initial = _load_configuration(files)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            with self._lock:
                stamp = files_stamp(self._files)
                if stamp == self._stamp:
                    return None
                self._stamp = stamp  # one warning per change, not per handshake
                configuration = _load_configuration(self._files)
        except TlsConfigError as error:
            log.warning("TLS files changed but cannot be used yet; still serving the previous "
                        "certificate: %s", error)
            return None
        except Exception as error:  # gRPC core only logs a traceback; keep serving
            log.warning("TLS reload failed; still serving the previous certificate: %s",
                        type(error).__name__)
            return None
        log.info("TLS certificate reloaded from %s", self._files.cert)
        return configuration


def _load_configuration(files: TlsFiles) -> grpc.ServerCertificateConfiguration:
    """The files as gRPC's certificate configuration, read and checked by read_checked."""
    checked = read_checked(files)
    return grpc.ssl_server_certificate_configuration([(checked.key, checked.cert)],
                                                     root_certificates=checked.client_ca)


@dataclass(frozen=True)
class CheckedPem:
    """The TLS files' bytes, checked: PEM certificates, a key matching the first one."""

    cert: bytes
    key: bytes
    client_ca: bytes | None


def read_checked(files: TlsFiles) -> CheckedPem:
    """Reads and checks the files: PEM, a key matching the first certificate, a CA bundle;
    TlsConfigError (one line) when they cannot be used. An expired certificate is a warning."""
    cert_label, key_label = f"EFFORT_TLS_CERT_FILE {files.cert}", f"EFFORT_TLS_KEY_FILE {files.key}"
    cert_pem, key_pem = read_pem(files.cert, cert_label), read_pem(files.key, key_label)
    chain = pem_certificates(cert_pem, cert_label)
    check_pair(chain, pem_private_key(key_pem, key_label), cert_label, key_label)
    if chain[0].not_valid_after_utc < datetime.now(UTC):
        log.warning("the TLS certificate in %s expired on %s", files.cert,
                    chain[0].not_valid_after_utc.isoformat())
    ca_pem = None
    if files.client_ca is not None:
        ca_label = f"EFFORT_TLS_CLIENT_CA_FILE {files.client_ca}"
        ca_pem = read_pem(files.client_ca, ca_label)
        pem_certificates(ca_pem, ca_label)
    return CheckedPem(cert_pem, key_pem, ca_pem)


def files_stamp(files: TlsFiles) -> Stamp:
    """What changes when any of the files is rewritten or replaced; None for an unreadable one."""
    stamps: list[tuple[int, int, int] | None] = []
    for path in files.paths():
        try:
            status = os.stat(path)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((status.st_mtime_ns, status.st_size, status.st_ino))
    return tuple(stamps)


def read_pem(path: Path, label: str) -> bytes:
    """The file's bytes; TlsConfigError naming `label` when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise TlsConfigError(f"cannot read {label}: {error.strerror or error}") from None


def pem_certificates(pem: bytes, label: str) -> list[x509.Certificate]:
    """The PEM certificates in `pem`, at least one; TlsConfigError otherwise."""
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise TlsConfigError(f"{label} holds no readable PEM certificate "
                             "(-----BEGIN CERTIFICATE-----)") from None


def pem_private_key(pem: bytes, label: str) -> PrivateKeyTypes:
    """The unencrypted PEM private key in `pem`; TlsConfigError otherwise (never its bytes)."""
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except TypeError:  # cryptography's "password was not given but private key is encrypted"
        raise TlsConfigError(f"{label} is encrypted; gRPC needs an unencrypted PEM key "
                             "(readable by its owner only)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsConfigError(f"{label} holds no readable PEM private key "
                             "(-----BEGIN PRIVATE KEY-----)") from None


def check_pair(chain: list[x509.Certificate], key: PrivateKeyTypes, cert_label: str,
               key_label: str) -> None:
    """TlsConfigError unless `key` is the private key of the chain's first certificate."""
    if chain[0].public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
        raise TlsConfigError(f"the key in {key_label} does not match the certificate in "
                             f"{cert_label}; the certificate of that key must come first")
