"""Client channels to an Effort server: plaintext, TLS or mutual TLS, and bearer-token metadata."""

from pathlib import Path

import grpc

from service.tls import TlsConfigError, check_pair, pem_certificates, pem_private_key, read_pem


def open_channel(address: str, ca: Path | None = None, cert: Path | None = None,
                 key: Path | None = None) -> grpc.Channel:
    """A channel to `address` (host:port): plaintext when no file is given, else TLS.

    `ca` is the PEM CA bundle the server's certificate must chain to (None: the system's roots);
    `cert` and `key` (together) are the client's own certificate chain and key for mutual TLS.
    The server's certificate must name the host of `address` (no target-name override). Files
    that cannot be used raise TlsConfigError (one line) here rather than fail each call."""
    if ca is None and cert is None and key is None:
        return grpc.insecure_channel(address)
    if (cert is None) != (key is None):
        given, missing = ("certificate", "key") if key is None else ("key", "certificate")
        raise TlsConfigError(f"a client {given} file was given without its {missing} file; "
                             "mutual TLS needs both")
    root_pem = None
    if ca is not None:
        label = f"the CA bundle {ca}"
        root_pem = read_pem(ca, label)
        pem_certificates(root_pem, label)
    cert_pem = key_pem = None
    if cert is not None and key is not None:
        cert_label, key_label = f"the client certificate {cert}", f"the client key {key}"
        cert_pem, key_pem = read_pem(cert, cert_label), read_pem(key, key_label)
        check_pair(pem_certificates(cert_pem, cert_label), pem_private_key(key_pem, key_label),
                   cert_label, key_label)
    credentials = grpc.ssl_channel_credentials(root_certificates=root_pem, private_key=key_pem,
                                               certificate_chain=cert_pem)
    return grpc.secure_channel(address, credentials)


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token` as a bearer token; none without a token.

    Per-call metadata rather than call credentials: gRPC refuses call credentials on insecure
    channels, and plaintext loopback is still a supported setup."""
    return (("authorization", f"Bearer {token}"),) if token else ()
