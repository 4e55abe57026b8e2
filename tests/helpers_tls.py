"""Test certificates made with trustme: a CA, a server certificate for localhost, a client one."""

from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class TlsPaths:
    """PEM files written by write_certificates."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def write_certificates(folder: Path, prefix: str = "") -> TlsPaths:
    """Writes a new CA, a server certificate and key for localhost and 127.0.0.1 and a client
    certificate and key (both signed by that CA) into `folder`, names starting with `prefix`."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*SERVER_NAMES)
    client = ca.issue_cert(common_name="effort-client")
    paths = TlsPaths(*(folder / f"{prefix}{name}.pem" for name in (
        "ca", "server-cert", "server-key", "client-cert", "client-key")))
    ca.cert_pem.write_to_path(str(paths.ca))
    paths.server_cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(paths.server_key))
    paths.client_cert.write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(paths.client_key))
    return paths
